// The resources the operator reads through informers, each described once: group/version,
// kind, plural, scope. Label-filtered where the operator only cares about what it owns; reduced
// to a view (the fields some reader reads) where the cache would otherwise hold thousands of
// whole objects: injected pods and every workload of the cluster.
import type { KubernetesObject, V1ObjectMeta, V1OwnerReference } from "@kubernetes/client-node";
import type { InformerSpec } from "../kube/index.ts";

const OWNED = "app.kubernetes.io/managed-by=trellis";
const TRELLIS_PREFIX = "trellis.dev/";

/**
 * A container's state as far as a rollout cares: restarts, whether it passed its startup probe,
 * and why it waits (ErrImagePull, CrashLoopBackOff, ...), with the kubelet's message cut short.
 */
export interface ContainerStateView {
  name: string;
  restartCount: number;
  started?: boolean;
  state?: "waiting" | "running" | "terminated";
  waiting?: { reason: string; message?: string };
  /** Its last run ended with a non-zero exit code (now or before a restart), and the message (the CNI validator's). */
  failed?: { exitCode: number; message?: string };
}

/**
 * What the operator reads of an injected pod, and all the pod cache keeps: the rollout reads
 * labels (proxy version, pod-template-hash, PodDisruptionBudget selectors), the controlling
 * owner, deletion, start time, the phase, the Ready condition and each container's restarts
 * and waiting reason; the trust-anchor rotation reads the proxies' trellis.dev/ report
 * annotations and the phase. No spec, except two facts of pods without a proxy.
 */
export interface PodView extends KubernetesObject {
  metadata?: Pick<
    V1ObjectMeta,
    | "name"
    | "namespace"
    | "uid"
    | "resourceVersion"
    | "labels"
    | "annotations"
    | "deletionTimestamp"
    | "creationTimestamp"
  > & { ownerReferences?: V1OwnerReference[] };
  /**
   * The node it runs on (the CNI repair reads it); for pods without a proxy (uninjectedPod) also
   * what decides whether the injector would mesh them — the host's network, and container names
   * the proxy needs.
   */
  spec?: { nodeName?: string; hostNetwork?: boolean; containerNames?: string[] };
  status?: {
    phase?: string;
    /** When the kubelet took the pod on (RFC 3339), before pulling images. */
    startTime?: string;
    conditions?: Array<{ type: string; status: string }>;
    initContainerStatuses?: ContainerStateView[];
    containerStatuses?: ContainerStateView[];
  };
}

/** The update strategy of a workload, as far as "does a restart take pods down" needs it. */
export interface UpdateStrategyView {
  type?: string;
  maxUnavailable?: number | string;
  maxSurge?: number | string;
  partition?: number;
}

/** What the rollout reads of a Deployment, StatefulSet or DaemonSet. */
export interface WorkloadObjectView extends KubernetesObject {
  metadata?: Pick<V1ObjectMeta, "name" | "namespace" | "uid" | "resourceVersion" | "generation" | "labels">;
  spec?: {
    replicas?: number;
    paused?: boolean;
    strategy?: UpdateStrategyView;
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec?: { hostNetwork?: boolean };
    };
  };
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

/** The kubelet's messages can be long (a whole registry error); a status line needs the start. */
const MAX_WAITING_MESSAGE = 200;

interface RawContainerStatus {
  name: string;
  restartCount: number;
  started?: boolean;
  state?: {
    waiting?: { reason?: string; message?: string };
    running?: unknown;
    terminated?: { exitCode?: number; message?: string };
  };
  lastState?: { terminated?: { exitCode?: number; message?: string } };
}

function stateName(c: RawContainerStatus): ContainerStateView["state"] {
  if (c.state?.waiting) return "waiting";
  if (c.state?.running) return "running";
  return c.state?.terminated ? "terminated" : undefined;
}

function containerStates(list: RawContainerStatus[] | undefined): ContainerStateView[] | undefined {
  return list?.map((c) => {
    const waiting = c.state?.waiting;
    const message = waiting?.message?.slice(0, MAX_WAITING_MESSAGE);
    const state = stateName(c);
    const ended = c.state?.terminated ?? c.lastState?.terminated;
    const failed =
      ended?.exitCode !== undefined && ended.exitCode !== 0
        ? { exitCode: ended.exitCode, ...(ended.message ? { message: ended.message.slice(0, 300) } : {}) }
        : undefined;
    return {
      name: c.name,
      restartCount: c.restartCount,
      ...(c.started === undefined ? {} : { started: c.started }),
      ...(state ? { state } : {}),
      ...(waiting?.reason ? { waiting: { reason: waiting.reason, ...(message ? { message } : {}) } } : {}),
      ...(failed ? { failed } : {}),
    };
  });
}

export function podView(obj: KubernetesObject): PodView {
  const m = obj.metadata ?? {};
  const status = ((obj as Raw).status ?? {}) as {
    phase?: string;
    startTime?: string | Date;
    conditions?: Array<{ type: string; status: string }>;
    initContainerStatuses?: RawContainerStatus[];
    containerStatuses?: RawContainerStatus[];
  };
  const started = status.startTime;
  const nodeName = ((obj as Raw).spec as { nodeName?: string } | undefined)?.nodeName;
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
      creationTimestamp: m.creationTimestamp,
    },
    ...(nodeName ? { spec: { nodeName } } : {}),
    status: {
      phase: status.phase,
      ...(started === undefined
        ? {}
        : { startTime: started instanceof Date ? started.toISOString() : started }),
      conditions: status.conditions
        ?.filter((c) => c.type === "Ready")
        .map(({ type, status }) => ({ type, status })),
      initContainerStatuses: containerStates(status.initContainerStatuses),
      containerStatuses: containerStates(status.containerStatuses),
    },
  };
}

/** A pod without a proxy: the pod view, and what the injector's decision reads of its spec. */
export function uninjectedPodView(obj: KubernetesObject): PodView {
  const spec = ((obj as Raw).spec ?? {}) as {
    nodeName?: string;
    hostNetwork?: boolean;
    containers?: Array<{ name: string }>;
    initContainers?: Array<{ name: string }>;
  };
  return {
    ...podView(obj),
    spec: {
      ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      containerNames: [...(spec.initContainers ?? []), ...(spec.containers ?? [])].map((c) => c.name),
    },
  };
}

type RawWorkload = Raw & {
  spec?: {
    replicas?: number;
    paused?: boolean;
    strategy?: { type?: string; rollingUpdate?: UpdateStrategyView };
    updateStrategy?: { type?: string; rollingUpdate?: UpdateStrategyView };
    template?: {
      metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
      spec?: { hostNetwork?: boolean };
    };
  };
};

/** Deployments call it strategy, StatefulSets and DaemonSets updateStrategy; the view has one. */
function strategyOf(spec: RawWorkload["spec"]): UpdateStrategyView | undefined {
  const s = spec?.strategy ?? spec?.updateStrategy;
  if (!s) return undefined;
  const r = s.rollingUpdate ?? {};
  return {
    ...(s.type === undefined ? {} : { type: s.type }),
    ...(r.maxUnavailable === undefined ? {} : { maxUnavailable: r.maxUnavailable }),
    ...(r.maxSurge === undefined ? {} : { maxSurge: r.maxSurge }),
    ...(r.partition === undefined ? {} : { partition: r.partition }),
  };
}

export function workloadObjectView(obj: KubernetesObject): WorkloadObjectView {
  const m = obj.metadata ?? {};
  const raw = obj as RawWorkload & WorkloadObjectView;
  const template = raw.spec?.template;
  const annotations = trellisAnnotations(template?.metadata?.annotations);
  const strategy = strategyOf(raw.spec);
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
    spec: {
      replicas: raw.spec?.replicas,
      ...(raw.spec?.paused ? { paused: true } : {}),
      ...(strategy ? { strategy } : {}),
      template: {
        metadata: { labels: template?.metadata?.labels, annotations },
        ...(template?.spec?.hostNetwork ? { spec: { hostNetwork: true } } : {}),
      },
    },
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
  /** Pods the injector did not mesh (every namespace; whether they should be is decided later). */
  uninjectedPod: {
    apiVersion: "v1",
    kind: "Pod",
    plural: "pods",
    namespaced: true,
    labelSelector: "!trellis.dev/proxy-version",
    transform: uninjectedPodView,
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
