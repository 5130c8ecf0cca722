// Sidecar injection as a pure function: given a pod at admission (and its namespace's
// annotations and labels), decide whether it is meshed and return the JSON Patch that adds
// trellis-init (installs the pod's capture rules; capture-injection.ts) and the Trellis proxy as a
// native sidecar (an init container with restartPolicy: Always), its identity token, trust
// bundle, ports and resources, rewrites the probes capture would break (probe-rewrite.ts), and
// stamps the proxy version it injected; plus the notices the admission must carry.
//
// The version: a workload being rolled out carries `trellis.dev/proxy-version` on its pod
// template (set by the rollout), so a pod that restarts for any reason keeps its wave's version;
// pods without it get the fleet's current version from the Mesh status.
import type { V1Container, V1Pod, V1Volume } from "@kubernetes/client-node";
import { imageTag } from "../../api/image-references.ts";
import {
  ANNOTATIONS,
  type CaptureMode,
  CONTROL_PLANE_NAMESPACE,
  IDENTITY_AUDIENCE,
  injectionIntent,
  LABELS,
} from "../../api/index.ts";
import { type PodCapture, podCaptureOf } from "../../capture/annotations.ts";
import type { AppProbe } from "../../capture/app-probes.ts";
import { PROXY_PORTS, PROXY_UID } from "../../capture/capture-settings.ts";
import { CAPTURE_ANNOTATION, captureAnnotationValue } from "../../cni/capture-annotation.ts";
import {
  captureNotices,
  captureProxyEnv,
  hostNetworkNotice,
  type InjectionNotice,
  initContainer,
  initVolumes,
  proxyUidNotices,
} from "./capture-injection.ts";
import { podCaptureMode, validatorContainer } from "./cni-injection.ts";
import { rewriteProbes } from "./probe-rewrite.ts";

export type { InjectionNotice };
export { PROXY_UID };
export const PROXY_CONTAINER = "trellis-proxy";
export const PORTS = PROXY_PORTS;
export const TRUST_BUNDLE_CONFIGMAP = "trellis-trust-bundle";

export interface InjectionConfig {
  /** Image repository of the proxy, without tag. */
  proxyImage: string;
  /** The trellis-init image (with tag): the control plane's version (api/image-references.ts). */
  initImage: string;
  /** The capture mode of pods whose workload names none (the Mesh's status.capture.mode). */
  captureMode: CaptureMode;
  /** The cni image (with tag), whose validator CNI-mode pods run first. */
  cniImage: string;
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

export type InjectionDecision = (
  | { inject: false; reason: string }
  | { inject: true; version: string; patch: JsonPatchOperation[] }
) & {
  /** What the admission response warns about and Events record (empty when all is well). */
  notices: InjectionNotice[];
};

export interface JsonPatchOperation {
  op: "add" | "replace";
  path: string;
  value: unknown;
}

export function decideInjection(
  pod: V1Pod,
  namespaceAnnotations: Record<string, string>,
  config: InjectionConfig,
  namespaceLabels: Record<string, string> = {},
): InjectionDecision {
  if (pod.spec?.initContainers?.some((c) => c.name === PROXY_CONTAINER && c.restartPolicy === "Always"))
    return { inject: false, reason: "already injected", notices: [] };
  const intent = injectionIntent(pod.metadata?.annotations, namespaceAnnotations);
  if (!intent.meshed) return { inject: false, reason: intent.reason, notices: [] };
  if (pod.spec?.hostNetwork)
    return {
      inject: false,
      reason: "hostNetwork pods are never meshed (capturing their traffic would capture the node's)",
      notices: [hostNetworkNotice()],
    };
  const version = pod.metadata?.annotations?.[ANNOTATIONS.proxyVersion] ?? config.defaultProxyVersion;
  const namespace = pod.metadata?.namespace ?? "";
  const capture = podCaptureOf(pod.metadata?.annotations, namespaceAnnotations);
  const mode = podCaptureMode(pod.metadata?.annotations, config.captureMode);
  const patch = injectionPatch(pod, config, version, capture, mode.mode);
  const clash = nameClash(pod, patch);
  if (clash)
    return {
      inject: false,
      reason: clash,
      notices: [{ reason: "NameTaken", message: `trellis: pod not meshed: ${clash}` }],
    };
  // In CNI mode no container needs a capability: Pod Security levels forbid nothing of it.
  const notices = captureNotices(capture, namespace, namespaceLabels).filter(
    (n) => mode.mode === "InitContainer" || n.reason !== "PodSecurityForbidsCapture",
  );
  const uid = proxyUidNotices(pod, capture.settings.proxyUid);
  return { inject: true, version, patch, notices: [...notices, ...mode.notices, ...uid] };
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

function injectionPatch(
  pod: V1Pod,
  config: InjectionConfig,
  version: string,
  capture: PodCapture,
  mode: CaptureMode,
): JsonPatchOperation[] {
  const spec = pod.spec ?? { containers: [] };
  // Probe replacements address containers by their index as admitted: they go first.
  const probes = rewriteProbes(pod, capture.settings.skipInboundPorts);
  const ops: JsonPatchOperation[] = [...probes.patch];
  const first = [
    mode === "CNI"
      ? validatorContainer(capture, config.cniImage, config.resources)
      : initContainer(capture, config.initImage, config.resources),
    proxyContainer(pod, config, version, capture, probes.probes),
  ];
  if (spec.initContainers && spec.initContainers.length > 0) {
    first.forEach((c, i) => {
      ops.push({ op: "add", path: `/spec/initContainers/${i}`, value: c });
    });
  } else {
    ops.push({ op: "add", path: "/spec/initContainers", value: first });
  }
  const volumes = [...(mode === "CNI" ? [] : initVolumes()), ...proxyVolumes()];
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
  if (mode === "CNI") {
    ops.push({
      op: "add",
      path: `/metadata/annotations/${escapePointer(CAPTURE_ANNOTATION)}`,
      value: captureAnnotationValue(capture.settings),
    });
  }
  if (!pod.metadata?.labels) ops.push({ op: "add", path: "/metadata/labels", value: {} });
  ops.push({ op: "add", path: `/metadata/labels/${escapePointer(LABELS.proxyVersion)}`, value: version });
  ops.push({ op: "add", path: `/metadata/labels/${escapePointer(LABELS.captureMode)}`, value: mode });
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

function proxyContainer(
  pod: V1Pod,
  config: InjectionConfig,
  version: string,
  capture: PodCapture,
  probes: Record<string, AppProbe>,
): V1Container {
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
    // Loopback only: captured connections arrive there, and nothing outside the pod may use
    // this pod's identity.
    { name: "TRELLIS_PROXY_OUTBOUND_LISTEN", value: `127.0.0.1:${PORTS.outbound}` },
    // Every inbound connection is captured, whatever ports the pod declares.
    { name: "TRELLIS_PROXY_INBOUND_LISTEN", value: `0.0.0.0:${PORTS.inbound}` },
    // Only a fallback under capture (peers without the transport header; docs/capture.md).
    ...(port === undefined ? [] : [{ name: "TRELLIS_PROXY_INBOUND_APP", value: `127.0.0.1:${port}` }]),
    ...captureProxyEnv(capture, probes),
    // Mesh spec.proxy.unmeshedClients: whether plaintext clients may reach this pod's ports.
    { name: "TRELLIS_PROXY_INBOUND_ALLOW_PLAINTEXT", value: String(config.allowUnmeshedClients ?? true) },
    // Headless Services: a proxy dials pod IPs, never a ClusterIP (its own connections are not
    // captured, and in a cluster without kube-proxy nothing else routes a ClusterIP). The
    // certificates carry the ordinary Service names, which the proxy checks instead.
    {
      name: "TRELLIS_PROXY_IDENTITY_URL",
      value: config.identityUrl ?? `https://trellis-identity-headless.${CONTROL_PLANE_NAMESPACE}.svc:8080`,
    },
    ...(config.identityUrl
      ? []
      : [
          {
            name: "TRELLIS_PROXY_IDENTITY_SERVER_IDENTITY",
            value: `trellis-identity.${CONTROL_PLANE_NAMESPACE}.svc`,
          },
        ]),
    { name: "TRELLIS_PROXY_IDENTITY_TOKEN_PATH", value: "/var/run/trellis/identity/token" },
    { name: "TRELLIS_PROXY_TRUST_BUNDLE_PATH", value: "/var/run/trellis/trust/ca-bundle.crt" },
    {
      name: "TRELLIS_PROXY_DESTINATION_URL",
      value:
        config.destinationUrl ?? `https://trellis-destination-headless.${CONTROL_PLANE_NAMESPACE}.svc:8086`,
    },
    ...(config.destinationUrl
      ? []
      : [
          {
            name: "TRELLIS_PROXY_DESTINATION_SERVER_IDENTITY",
            value: `trellis-destination.${CONTROL_PLANE_NAMESPACE}.svc`,
          },
        ]),
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
      // With the rest, what the `restricted` Pod Security Standard asks of every container.
      seccompProfile: { type: "RuntimeDefault" },
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
