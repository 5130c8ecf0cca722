// Sidecar injection as a pure function: given a pod at admission (and its namespace's
// annotations), decide whether it is meshed and return the JSON Patch that adds the Trellis
// proxy as a native sidecar (an init container with restartPolicy: Always), its identity
// token, trust bundle, ports and resources, and stamps the proxy version it injected.
//
// The version: a workload being rolled out carries `trellis.dev/proxy-version` on its pod
// template (set by the rollout), so a pod that restarts for any reason keeps its wave's version;
// pods without it get the fleet's current version from the Mesh status.
import type { V1Container, V1Pod, V1Volume } from "@kubernetes/client-node";
import { imageTag } from "../../api/image-references.ts";
import {
  ANNOTATIONS,
  CONTROL_PLANE_NAMESPACE,
  IDENTITY_AUDIENCE,
  injectionIntent,
  LABELS,
} from "../../api/index.ts";

export const PROXY_CONTAINER = "trellis-proxy";
export const PROXY_UID = 2102;
export const PORTS = { inbound: 4143, outbound: 4140, admin: 4191 } as const;
export const TRUST_BUNDLE_CONFIGMAP = "trellis-trust-bundle";

export interface InjectionConfig {
  /** Image repository of the proxy, without tag. */
  proxyImage: string;
  /** Version given to pods whose template does not name one. */
  defaultProxyVersion: string;
  logLevel: string;
  /** Mesh spec.proxy.unmeshedClients: whether plaintext clients may reach meshed pods (default true). */
  allowUnmeshedClients?: boolean;
  resources: NonNullable<V1Container["resources"]>;
  trustDomain: string;
  identityUrl?: string;
  destinationUrl?: string;
}

export type InjectionDecision =
  /** `warn`: the pod asked to be meshed and is not; the API server shows the reason to its creator. */
  | { inject: false; reason: string; warn?: boolean }
  | { inject: true; version: string; patch: JsonPatchOperation[] };

export interface JsonPatchOperation {
  op: "add" | "replace";
  path: string;
  value: unknown;
}

export function decideInjection(
  pod: V1Pod,
  namespaceAnnotations: Record<string, string>,
  config: InjectionConfig,
): InjectionDecision {
  if (pod.spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER && c.restartPolicy === "Always"))
    return { inject: false, reason: "already injected" };
  const intent = injectionIntent(pod.metadata?.annotations, namespaceAnnotations);
  if (!intent.meshed) return { inject: false, reason: intent.reason };
  if (pod.spec?.hostNetwork)
    return {
      inject: false,
      reason: "hostNetwork pods are never meshed (the proxy would own the node's ports)",
      warn: true,
    };
  const version = pod.metadata?.annotations?.[ANNOTATIONS.proxyVersion] ?? config.defaultProxyVersion;
  const patch = injectionPatch(pod, config, version);
  const clash = nameClash(pod, patch);
  if (clash) return { inject: false, reason: clash, warn: true };
  return { inject: true, version, patch };
}

/**
 * A container or volume the patch adds whose name the pod already uses: injected, the pod would
 * be refused as invalid (duplicate name), so it is left unmeshed and its creator told why.
 * Renaming ours instead would make the proxy's name depend on the pod; every tool that looks for
 * the `trellis-proxy` container (the rollout, probes, `kubectl logs -c`) relies on it.
 */
function nameClash(pod: V1Pod, patch: JsonPatchOperation[]): string | undefined {
  const spec = pod.spec;
  const containers = new Set(
    [...(spec?.initContainers ?? []), ...(spec?.containers ?? []), ...(spec?.ephemeralContainers ?? [])].map(
      (c) => c.name,
    ),
  );
  const volumes = new Set((spec?.volumes ?? []).map((v) => v.name));
  for (const op of patch) {
    const added = (Array.isArray(op.value) ? op.value : [op.value]) as Array<{ name?: string }>;
    const names = added.map((v) => v?.name).filter((n): n is string => typeof n === "string");
    const taken = op.path.startsWith("/spec/initContainers")
      ? containers
      : op.path.startsWith("/spec/volumes")
        ? volumes
        : undefined;
    const name = taken && names.find((n) => taken.has(n));
    if (name)
      return `the pod already has a ${taken === containers ? "container" : "volume"} named ${name}, which the mesh's proxy needs: rename it to mesh the pod`;
  }
  return undefined;
}

function injectionPatch(pod: V1Pod, config: InjectionConfig, version: string): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  const spec = pod.spec ?? { containers: [] };
  const sidecar = proxyContainer(pod, config, version);
  if (spec.initContainers && spec.initContainers.length > 0) {
    ops.push({ op: "add", path: "/spec/initContainers/0", value: sidecar });
  } else {
    ops.push({ op: "add", path: "/spec/initContainers", value: [sidecar] });
  }
  const volumes = proxyVolumes();
  if (spec.volumes && spec.volumes.length > 0) {
    for (const v of volumes) ops.push({ op: "add", path: "/spec/volumes/-", value: v });
  } else {
    ops.push({ op: "add", path: "/spec/volumes", value: volumes });
  }
  if (!pod.metadata?.annotations) ops.push({ op: "add", path: "/metadata/annotations", value: {} });
  ops.push({
    op: "add",
    path: `/metadata/annotations/${escapePointer(ANNOTATIONS.proxyVersion)}`,
    value: version,
  });
  if (!pod.metadata?.labels) ops.push({ op: "add", path: "/metadata/labels", value: {} });
  ops.push({ op: "add", path: `/metadata/labels/${escapePointer(LABELS.proxyVersion)}`, value: version });
  return ops;
}

/** JSON Pointer escaping of a map key (RFC 6901). */
function escapePointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function appPort(pod: V1Pod): number | undefined {
  for (const c of pod.spec?.containers ?? []) {
    const tcp = c.ports?.find((p) => (p.protocol ?? "TCP") === "TCP");
    if (tcp) return tcp.containerPort;
  }
  return undefined;
}

function proxyContainer(pod: V1Pod, config: InjectionConfig, version: string): V1Container {
  const port = appPort(pod);
  const env = [
    { name: "TRELLIS_POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "TRELLIS_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "TRELLIS_SERVICE_ACCOUNT", valueFrom: { fieldRef: { fieldPath: "spec.serviceAccountName" } } },
    // Kubernetes expands $(VAR) from the variables defined above it.
    {
      name: "TRELLIS_PROXY_IDENTITY_SPIFFE_ID",
      value: `spiffe://${config.trustDomain}/ns/$(TRELLIS_POD_NAMESPACE)/sa/$(TRELLIS_SERVICE_ACCOUNT)`,
    },
    { name: "TRELLIS_PROXY_LOG_LEVEL", value: config.logLevel },
    { name: "TRELLIS_PROXY_ADMIN_LISTEN", value: `0.0.0.0:${PORTS.admin}` },
    { name: "TRELLIS_PROXY_OUTBOUND_LISTEN", value: `127.0.0.1:${PORTS.outbound}` },
    ...(port === undefined
      ? []
      : [
          { name: "TRELLIS_PROXY_INBOUND_LISTEN", value: `0.0.0.0:${PORTS.inbound}` },
          { name: "TRELLIS_PROXY_INBOUND_APP", value: `127.0.0.1:${port}` },
          {
            name: "TRELLIS_PROXY_INBOUND_ALLOW_PLAINTEXT",
            value: String(config.allowUnmeshedClients ?? true),
          },
        ]),
    {
      name: "TRELLIS_PROXY_IDENTITY_URL",
      value: config.identityUrl ?? `https://trellis-identity.${CONTROL_PLANE_NAMESPACE}.svc:8080`,
    },
    { name: "TRELLIS_PROXY_IDENTITY_TOKEN_PATH", value: "/var/run/trellis/identity/token" },
    { name: "TRELLIS_PROXY_TRUST_BUNDLE_PATH", value: "/var/run/trellis/trust/ca-bundle.crt" },
    {
      name: "TRELLIS_PROXY_DESTINATION_URL",
      value: config.destinationUrl ?? `https://trellis-destination.${CONTROL_PLANE_NAMESPACE}.svc:8086`,
    },
  ];
  return {
    name: PROXY_CONTAINER,
    image: `${config.proxyImage}:${imageTag(version)}`,
    imagePullPolicy: "IfNotPresent",
    restartPolicy: "Always",
    env,
    ports: [
      { name: "trellis-inbound", containerPort: PORTS.inbound },
      { name: "trellis-admin", containerPort: PORTS.admin },
    ],
    startupProbe: {
      httpGet: { path: "/ready", port: PORTS.admin as never },
      periodSeconds: 1,
      failureThreshold: 120,
    },
    readinessProbe: { httpGet: { path: "/ready", port: PORTS.admin as never }, periodSeconds: 5 },
    livenessProbe: { httpGet: { path: "/live", port: PORTS.admin as never }, periodSeconds: 10 },
    resources: config.resources,
    securityContext: {
      runAsUser: PROXY_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    volumeMounts: [
      { name: "trellis-identity-token", mountPath: "/var/run/trellis/identity", readOnly: true },
      { name: "trellis-trust-bundle", mountPath: "/var/run/trellis/trust", readOnly: true },
    ],
  };
}

function proxyVolumes(): V1Volume[] {
  return [
    {
      name: "trellis-identity-token",
      projected: {
        sources: [
          { serviceAccountToken: { path: "token", audience: IDENTITY_AUDIENCE, expirationSeconds: 86400 } },
        ],
      },
    },
    { name: "trellis-trust-bundle", configMap: { name: TRUST_BUNDLE_CONFIGMAP } },
  ];
}
