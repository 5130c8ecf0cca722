// The resources the operator reads through informers, each described once: group/version,
// kind, plural, scope. Label-filtered where the operator only cares about what it owns; reduced
// to a view (the fields some reader reads) where the cache would otherwise hold thousands of
// whole objects: injected pods and every workload of the cluster.
import type { KubernetesObject, V1ObjectMeta, V1OwnerReference } from "@kubernetes/client-node";
import type { InformerSpec } from "../kube/index.ts";

const OWNED = "app.kubernetes.io/managed-by=trellis";
const TRELLIS_PREFIX = "trellis.dev/";

/**
 * What the operator reads of an injected pod, and all the pod cache keeps: the rollout reads
 * labels (proxy version, pod-template-hash, PodDisruptionBudget selectors), the controlling
 * owner, deletion, the Ready condition and container restart counts; the trust-anchor rotation
 * reads the proxies' trellis.dev/ report annotations and the phase. No spec at all.
 */
export interface PodView extends KubernetesObject {
  metadata?: Pick<
    V1ObjectMeta,
    "name" | "namespace" | "uid" | "resourceVersion" | "labels" | "annotations" | "deletionTimestamp"
  > & { ownerReferences?: V1OwnerReference[] };
  /** The node it runs on (the CNI repair reads it). */
  spec?: { nodeName?: string };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string }>;
    /** Init containers: restarts, and the exit code of a failed last run with its message (the CNI validator's). */
    initContainerStatuses?: Array<{
      restartCount: number;
      name?: string;
      failedExitCode?: number;
      message?: string;
    }>;
    containerStatuses?: Array<{ restartCount: number }>;
  };
}

/** A container status as the API server sends it, reduced to what podView reads. */
interface RawContainerStatus {
  restartCount: number;
  name?: string;
  state?: { terminated?: { exitCode?: number; message?: string } };
  lastState?: { terminated?: { exitCode?: number; message?: string } };
}

/** An init container's restarts, name and, when its last run failed, the exit code and message. */
function initStatus(
  c: RawContainerStatus,
): NonNullable<NonNullable<PodView["status"]>["initContainerStatuses"]>[number] {
  const terminated = c.state?.terminated ?? c.lastState?.terminated;
  const failed = terminated?.exitCode !== undefined && terminated.exitCode !== 0;
  return {
    restartCount: c.restartCount,
    name: c.name,
    ...(failed ? { failedExitCode: terminated?.exitCode, message: terminated?.message?.slice(0, 300) } : {}),
  };
}

/** What the rollout reads of a Deployment, StatefulSet or DaemonSet. */
export interface WorkloadObjectView extends KubernetesObject {
  metadata?: Pick<V1ObjectMeta, "name" | "namespace" | "uid" | "resourceVersion" | "generation" | "labels">;
  spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } };
  /** Rollout progress as the workload's own controller reports it (what `kubectl rollout status` reads). */
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  };
}

/** Only the trellis.dev/ annotations (the operator reads no others; some tools write large ones). */
function trellisAnnotations(all: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!all) return undefined;
  const kept = Object.entries(all).filter(([k]) => k.startsWith(TRELLIS_PREFIX));
  return kept.length > 0 ? Object.fromEntries(kept) : undefined;
}

type Raw = KubernetesObject & { spec?: Record<string, unknown>; status?: Record<string, unknown> };

export function podView(obj: KubernetesObject): PodView {
  const m = obj.metadata ?? {};
  const status = ((obj as Raw).status ?? {}) as {
    phase?: string;
    conditions?: Array<{ type: string; status: string }>;
    initContainerStatuses?: RawContainerStatus[];
    containerStatuses?: Array<{ restartCount: number }>;
  };
  const nodeName = ((obj as Raw).spec as { nodeName?: string } | undefined)?.nodeName;
  const restarts = (list: Array<{ restartCount: number }> | undefined) =>
    list?.map((c) => ({ restartCount: c.restartCount }));
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      annotations: trellisAnnotations(m.annotations),
      ownerReferences: m.ownerReferences?.map(({ apiVersion, kind, name, uid, controller }) => ({
        apiVersion,
        kind,
        name,
        uid,
        controller,
      })),
      deletionTimestamp: m.deletionTimestamp,
    },
    ...(nodeName ? { spec: { nodeName } } : {}),
    status: {
      phase: status.phase,
      conditions: status.conditions
        ?.filter((c) => c.type === "Ready")
        .map(({ type, status }) => ({ type, status })),
      initContainerStatuses: status.initContainerStatuses?.map(initStatus),
      containerStatuses: restarts(status.containerStatuses),
    },
  };
}

export function workloadObjectView(obj: KubernetesObject): WorkloadObjectView {
  const m = obj.metadata ?? {};
  const raw = obj as Raw & WorkloadObjectView;
  const annotations = trellisAnnotations(raw.spec?.template?.metadata?.annotations);
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      generation: m.generation,
      labels: m.labels,
    },
    spec: { replicas: raw.spec?.replicas, template: { metadata: { annotations } } },
    status: {
      observedGeneration: raw.status?.observedGeneration,
      replicas: raw.status?.replicas,
      updatedReplicas: raw.status?.updatedReplicas,
      availableReplicas: raw.status?.availableReplicas,
      readyReplicas: raw.status?.readyReplicas,
      desiredNumberScheduled: raw.status?.desiredNumberScheduled,
      updatedNumberScheduled: raw.status?.updatedNumberScheduled,
      numberAvailable: raw.status?.numberAvailable,
    },
  };
}

export const RESOURCES = {
  mesh: { apiVersion: "trellis.dev/v1alpha1", kind: "Mesh", plural: "meshes", namespaced: false },
  certificate: {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Certificate",
    plural: "certificates",
    namespaced: true,
  },
  serviceProfile: {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "ServiceProfile",
    plural: "serviceprofiles",
    namespaced: true,
  },
  daemonSet: {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    plural: "daemonsets",
    namespaced: true,
    labelSelector: OWNED,
  },
  /** The trellis-cni installer pods (one per node): which nodes have the plugin ready. */
  cniInstallerPod: {
    apiVersion: "v1",
    kind: "Pod",
    plural: "pods",
    namespaced: true,
    namespace: "trellis-system",
    labelSelector: "app.kubernetes.io/name=trellis-cni",
    transform: podView,
  },
  injectedPod: {
    apiVersion: "v1",
    kind: "Pod",
    plural: "pods",
    namespaced: true,
    labelSelector: "trellis.dev/proxy-version",
    transform: podView,
  },
  anyNamespace: { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false },
  ownedSecret: {
    apiVersion: "v1",
    kind: "Secret",
    plural: "secrets",
    namespaced: true,
    labelSelector: OWNED,
  },
  namespace: {
    apiVersion: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    labelSelector: OWNED,
  },
  serviceAccount: {
    apiVersion: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    namespaced: true,
    labelSelector: OWNED,
  },
  configMap: {
    apiVersion: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    labelSelector: OWNED,
  },
  service: { apiVersion: "v1", kind: "Service", plural: "services", namespaced: true, labelSelector: OWNED },
  deployment: {
    apiVersion: "apps/v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
    labelSelector: OWNED,
  },
  anyDeployment: {
    apiVersion: "apps/v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
    transform: workloadObjectView,
  },
  anyStatefulSet: {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    plural: "statefulsets",
    namespaced: true,
    transform: workloadObjectView,
  },
  anyDaemonSet: {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    plural: "daemonsets",
    namespaced: true,
    transform: workloadObjectView,
  },
  anyPodDisruptionBudget: {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
    namespaced: true,
  },
  podDisruptionBudget: {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
    namespaced: true,
    labelSelector: OWNED,
  },
  clusterRole: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    plural: "clusterroles",
    namespaced: false,
    labelSelector: OWNED,
  },
  clusterRoleBinding: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    namespaced: false,
    labelSelector: OWNED,
  },
  role: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    plural: "roles",
    namespaced: true,
    labelSelector: OWNED,
  },
  roleBinding: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    plural: "rolebindings",
    namespaced: true,
    labelSelector: OWNED,
  },
  mutatingWebhook: {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    plural: "mutatingwebhookconfigurations",
    namespaced: false,
    labelSelector: OWNED,
  },
} as const satisfies Record<string, InformerSpec>;

export type ResourceName = keyof typeof RESOURCES;
