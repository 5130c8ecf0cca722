// The meshed workloads of the cluster, seen from their pods: each injected pod (it carries the
// trellis.dev/proxy-version label) is attributed to its Deployment, StatefulSet or DaemonSet, and
// each workload is summarised — how many pods run which proxy version, how many are Ready, how
// often they restarted. Pure over the pods and workloads read from the caches.
import { ANNOTATIONS, LABELS } from "../../api/index.ts";
import type { PodView } from "../resources.ts";

export type WorkloadKind = "Deployment" | "StatefulSet" | "DaemonSet";

export interface WorkloadRef {
  kind: WorkloadKind;
  namespace: string;
  name: string;
}

export interface WorkloadView extends WorkloadRef {
  key: string;
  /** The proxy version its pod template asks for (set by a rollout), if any. */
  templateVersion: string | undefined;
  labels: Record<string, string>;
  /** Pods per proxy version: total and Ready. */
  pods: Map<string, { total: number; ready: number; restarts: number }>;
  /** Desired replicas as the workload states them (DaemonSets: desired scheduled). */
  replicas: number;
  /**
   * The workload's controller reports its current template on every replica, all available
   * (what `kubectl rollout status` waits for). False while the cache lags a patch just sent.
   */
  rolledOut?: boolean;
}

export function workloadKey(ref: WorkloadRef): string {
  return `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** The workload that owns a pod, following a ReplicaSet to its Deployment by the pod-template-hash. */
export function ownerWorkload(pod: PodView): WorkloadRef | undefined {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
  const namespace = pod.metadata?.namespace ?? "default";
  if (!owner) return undefined;
  if (owner.kind === "StatefulSet" || owner.kind === "DaemonSet")
    return { kind: owner.kind, namespace, name: owner.name };
  if (owner.kind !== "ReplicaSet") return undefined;
  const hash = pod.metadata?.labels?.["pod-template-hash"];
  if (!hash || !owner.name.endsWith(`-${hash}`)) return undefined;
  return { kind: "Deployment", namespace, name: owner.name.slice(0, -(hash.length + 1)) };
}

export interface WorkloadObject {
  kind: WorkloadKind;
  metadata?: { name?: string; namespace?: string; generation?: number; labels?: Record<string, string> };
  spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } };
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

/** The workload's own status says its latest template runs on every replica, all available. */
export function isRolledOut(w: WorkloadObject): boolean {
  const s = w.status ?? {};
  if ((s.observedGeneration ?? 0) < (w.metadata?.generation ?? 1)) return false;
  if (w.kind === "DaemonSet") {
    const desired = s.desiredNumberScheduled ?? 0;
    return (s.updatedNumberScheduled ?? 0) >= desired && (s.numberAvailable ?? 0) >= desired;
  }
  const want = w.spec?.replicas ?? 1;
  const available = w.kind === "StatefulSet" ? s.readyReplicas : s.availableReplicas;
  return (s.updatedReplicas ?? 0) >= want && (available ?? 0) >= want && (s.replicas ?? 0) <= want;
}

function isReady(pod: PodView): boolean {
  return pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function restartsOf(pod: PodView): number {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0);
}

/** Workloads with at least one injected pod (or a rollout annotation), sorted by key. */
export function inventory(pods: PodView[], workloads: WorkloadObject[]): WorkloadView[] {
  const byKey = new Map<string, WorkloadView>();
  const objects = new Map(
    workloads.map((w) => [
      workloadKey({ kind: w.kind, namespace: w.metadata?.namespace ?? "", name: w.metadata?.name ?? "" }),
      w,
    ]),
  );
  const view = (ref: WorkloadRef): WorkloadView | undefined => {
    const key = workloadKey(ref);
    const obj = objects.get(key);
    if (!obj) return undefined;
    let v = byKey.get(key);
    if (!v) {
      v = {
        ...ref,
        key,
        templateVersion: obj.spec?.template?.metadata?.annotations?.[ANNOTATIONS.proxyVersion],
        labels: obj.metadata?.labels ?? {},
        pods: new Map(),
        replicas:
          obj.kind === "DaemonSet" ? (obj.status?.desiredNumberScheduled ?? 0) : (obj.spec?.replicas ?? 1),
        rolledOut: isRolledOut(obj),
      };
      byKey.set(key, v);
    }
    return v;
  };
  for (const pod of pods) {
    const version = pod.metadata?.labels?.[LABELS.proxyVersion];
    const ref = ownerWorkload(pod);
    if (!version || !ref || pod.metadata?.deletionTimestamp) continue;
    const v = view(ref);
    if (!v) continue;
    const counts = v.pods.get(version) ?? { total: 0, ready: 0, restarts: 0 };
    counts.total++;
    if (isReady(pod)) counts.ready++;
    counts.restarts += restartsOf(pod);
    v.pods.set(version, counts);
  }
  for (const [key, obj] of objects) {
    if (!byKey.has(key) && obj.spec?.template?.metadata?.annotations?.[ANNOTATIONS.proxyVersion]) {
      view({ kind: obj.kind, namespace: obj.metadata?.namespace ?? "", name: obj.metadata?.name ?? "" });
    }
  }
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * A workload runs `version` everywhere: its template asks for it, no injected pod runs another
 * version, and either every replica is an injected Ready pod of it or the workload's controller
 * reports the template rolled out. The second case is a pod the fail-open webhook created
 * without a proxy (the injector did not answer in time): it is not in the pod cache, and
 * without that case its workload could never finish and the step would fail at its deadline.
 */
export function isDoneAt(w: WorkloadView, version: string): boolean {
  if (w.templateVersion !== version) return false;
  const at = w.pods.get(version);
  const others = [...w.pods.entries()].filter(([v]) => v !== version).reduce((n, [, c]) => n + c.total, 0);
  if (others > 0) return false;
  return ((at?.total ?? 0) >= w.replicas && (at?.ready ?? 0) >= w.replicas) || w.rolledOut === true;
}
