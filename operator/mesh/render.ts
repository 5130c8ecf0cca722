// Rendering: a pure function from a Mesh (its defaulted spec), the operator's release and the
// revisions to run, to every control-plane object Trellis owns. No I/O; golden-file tested.
//
// Revisions: each listed revision gets its own Deployments; Services and the webhook select
// the active one only, so a candidate revision can become healthy beside the old one first.
import type {
  V1ConfigMap,
  V1Deployment,
  V1MutatingWebhookConfiguration,
  V1Namespace,
  V1ObjectMeta,
  V1PodDisruptionBudget,
  V1Service,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import {
  API_VERSION,
  CONTROL_PLANE_NAMESPACE,
  LABELS,
  MANAGED_BY,
  type MeshSpec,
  NEVER_MESHED_NAMESPACES,
} from "../../api/index.ts";
import { meshImages } from "../release.ts";
import { ADMIN_PORT, COMPONENTS, type ComponentDefinition, SERVING_CERT_DIR } from "./components.ts";
import { renderRbac } from "./render-rbac.ts";
import { revisionName } from "./revision.ts";

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: V1ObjectMeta & { name: string };
  [field: string]: unknown;
}

export interface RenderInput {
  mesh: { name: string; uid: string; spec: MeshSpec };
  operatorVersion: string;
  /** Versions whose control plane runs; the first is active (Services and webhook point at it). */
  versions: string[];
  /** PEM of every anchor proxies must trust (during a rotation, old and new). */
  trustBundlePem: string;
  /** base64 PEM of the CA that signed the injector's serving certificate. */
  injectorCaBundle: string;
  /** Development only: call the injector at this URL instead of through its Service. */
  injectorUrl?: string;
}

export const TRUST_BUNDLE_CONFIGMAP = "trellis-trust-bundle";
export const WEBHOOK_NAME = "trellis-proxy-injector";

export function renderControlPlane(input: RenderInput): KubeObject[] {
  const [active, ...others] = input.versions;
  if (active === undefined) throw new Error("renderControlPlane needs at least one version");
  const objects: KubeObject[] = [namespace(input)];
  for (const component of COMPONENTS) {
    objects.push(serviceAccount(input, component), ...renderRbac(meta(input, component.name), component));
    for (const version of [active, ...others]) objects.push(deployment(input, component, version));
    objects.push(service(input, component, active));
    if (component.headless) objects.push(service(input, component, active, true));
    if (input.mesh.spec.controlPlane.highAvailability) objects.push(disruptionBudget(input, component));
  }
  objects.push(trustBundle(input), webhook(input, active));
  return objects;
}

/** Labels every owned object carries; pruning selects on them. */
export function ownedLabels(meshName: string): Record<string, string> {
  return { [LABELS.managedBy]: MANAGED_BY, [LABELS.mesh]: meshName, [LABELS.partOf]: "trellis" };
}

export function meta(
  input: Pick<RenderInput, "mesh">,
  name: string,
  extraLabels: Record<string, string> = {},
  namespaced = true,
) {
  return {
    name,
    ...(namespaced ? { namespace: CONTROL_PLANE_NAMESPACE } : {}),
    labels: { ...ownedLabels(input.mesh.name), ...extraLabels },
    ownerReferences: [
      {
        apiVersion: API_VERSION,
        kind: "Mesh",
        name: input.mesh.name,
        uid: input.mesh.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ],
  };
}

function namespace(input: RenderInput): KubeObject {
  const ns: V1Namespace & KubeObject = {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: meta(input, CONTROL_PLANE_NAMESPACE, { "trellis.dev/inject": "disabled" }, false),
  };
  return ns;
}

function serviceAccount(input: RenderInput, c: ComponentDefinition): KubeObject {
  const sa: V1ServiceAccount & KubeObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta(input, `trellis-${c.name}`, { [LABELS.component]: c.name }),
  };
  return sa;
}

function selectorLabels(c: ComponentDefinition, version: string): Record<string, string> {
  return { "app.kubernetes.io/name": `trellis-${c.name}`, [LABELS.revision]: revisionName(version) };
}

function deployment(input: RenderInput, c: ComponentDefinition, version: string): KubeObject {
  const spec = input.mesh.spec;
  const images = meshImages(spec.controlPlane.imageRegistry, version);
  const labels = { ...selectorLabels(c, version), [LABELS.component]: c.name, [LABELS.version]: version };
  const ha = spec.controlPlane.highAvailability;
  const d: V1Deployment & KubeObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(input, `trellis-${c.name}-${revisionName(version)}`, labels),
    spec: {
      replicas: spec.controlPlane.replicas,
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(c, version) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: ha ? 1 : 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: { ...ownedLabels(input.mesh.name), ...labels },
          annotations: { "trellis.dev/inject": "disabled" },
        },
        spec: {
          serviceAccountName: `trellis-${c.name}`,
          automountServiceAccountToken: true,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(ha ? { affinity: antiAffinity(c, version) } : {}),
          ...(spec.controlPlane.nodeSelector ? { nodeSelector: spec.controlPlane.nodeSelector } : {}),
          ...(spec.controlPlane.tolerations ? { tolerations: spec.controlPlane.tolerations } : {}),
          containers: [
            {
              name: c.name,
              image: images.controlPlane,
              imagePullPolicy: "IfNotPresent",
              args: [
                c.name,
                `--port=${c.port}`,
                `--admin-port=${ADMIN_PORT}`,
                `--trust-domain=${spec.identity.trustDomain}`,
                ...(c.args?.(spec) ?? []),
                ...(c.servingSecret
                  ? [
                      `--tls-cert-file=${SERVING_CERT_DIR}/tls.crt`,
                      `--tls-key-file=${SERVING_CERT_DIR}/tls.key`,
                    ]
                  : []),
              ],
              env: [
                { name: "TRELLIS_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
              ],
              ports: [
                { name: c.portName, containerPort: c.port },
                { name: "admin", containerPort: ADMIN_PORT },
              ],
              readinessProbe: { httpGet: { path: "/readyz", port: "admin" }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: "/healthz", port: "admin" },
                periodSeconds: 10,
                failureThreshold: 3,
              },
              resources: spec.controlPlane.resources as never,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "trust-bundle", mountPath: "/var/run/trellis/trust", readOnly: true },
                ...(c.servingSecret
                  ? [{ name: "serving-cert", mountPath: SERVING_CERT_DIR, readOnly: true }]
                  : []),
              ],
            },
          ],
          volumes: [
            { name: "trust-bundle", configMap: { name: TRUST_BUNDLE_CONFIGMAP } },
            ...(c.servingSecret ? [{ name: "serving-cert", secret: { secretName: c.servingSecret } }] : []),
          ],
        },
      },
    },
  };
  return d;
}

function antiAffinity(c: ComponentDefinition, version: string) {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            topologyKey: "kubernetes.io/hostname",
            labelSelector: { matchLabels: selectorLabels(c, version) },
          },
        },
      ],
    },
  };
}

function service(
  input: RenderInput,
  c: ComponentDefinition,
  activeVersion: string,
  headless = false,
): KubeObject {
  const s: V1Service & KubeObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(input, `trellis-${c.name}${headless ? "-headless" : ""}`, { [LABELS.component]: c.name }),
    spec: {
      ...(headless ? { clusterIP: "None" } : {}),
      selector: selectorLabels(c, activeVersion),
      ports: [
        { name: c.portName, port: c.port, targetPort: c.portName as never },
        { name: "admin", port: ADMIN_PORT, targetPort: "admin" as never },
      ],
    },
  };
  return s;
}

function disruptionBudget(input: RenderInput, c: ComponentDefinition): KubeObject {
  const pdb: V1PodDisruptionBudget & KubeObject = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta(input, `trellis-${c.name}`, { [LABELS.component]: c.name }),
    spec: {
      maxUnavailable: 1 as never,
      selector: { matchLabels: { "app.kubernetes.io/name": `trellis-${c.name}` } },
    },
  };
  return pdb;
}

function trustBundle(input: RenderInput): KubeObject {
  const cm: V1ConfigMap & KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta(input, TRUST_BUNDLE_CONFIGMAP),
    data: { "ca-bundle.crt": input.trustBundlePem },
  };
  return cm;
}

function webhook(input: RenderInput, activeVersion: string): KubeObject {
  const injection = input.mesh.spec.injection;
  const clientConfig = input.injectorUrl
    ? { url: input.injectorUrl, caBundle: input.injectorCaBundle }
    : {
        service: {
          name: "trellis-injector",
          namespace: CONTROL_PLANE_NAMESPACE,
          path: "/inject",
          port: 8443,
        },
        caBundle: input.injectorCaBundle,
      };
  const excluded = {
    key: "kubernetes.io/metadata.name",
    operator: "NotIn",
    values: [...NEVER_MESHED_NAMESPACES],
  };
  const w: V1MutatingWebhookConfiguration & KubeObject = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    metadata: meta(input, WEBHOOK_NAME, { [LABELS.revision]: revisionName(activeVersion) }, false),
    webhooks: [
      {
        name: "inject.trellis.dev",
        clientConfig,
        rules: [
          {
            operations: ["CREATE"],
            apiGroups: [""],
            apiVersions: ["v1"],
            resources: ["pods"],
            scope: "Namespaced",
          },
        ],
        namespaceSelector: {
          matchLabels: injection.namespaceSelector?.matchLabels,
          matchExpressions: [...(injection.namespaceSelector?.matchExpressions ?? []), excluded],
        },
        objectSelector: injection.podSelector ?? {},
        admissionReviewVersions: ["v1"],
        // Events about pods meshed differently than asked; none on a dry run.
        sideEffects: "NoneOnDryRun",
        failurePolicy: "Ignore",
        reinvocationPolicy: "Never",
        timeoutSeconds: 10,
      },
    ],
  };
  return w;
}
