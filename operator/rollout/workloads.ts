// The meshed workloads of the cluster, seen from their pods: each injected pod (it carries the
// trellis.dev/proxy-version label) is attributed to its Deployment, StatefulSet or DaemonSet, and
// each workload is summarised — how many pods run which proxy version, how many are Ready, how
// often they restarted, which are in a certain failure, and what the rollout must know of the
// workload itself (paused, update strategy, template labels, opted out, host network). Pods
// that no such workload owns (Jobs, CronJob pods, bare pods, pods of other controllers) are
// grouped by owner as "other pods": a rollout never restarts them. Finished pods (Succeeded,
// Failed) run no proxy and count nowhere. Pods with a data-plane gap (data-plane.ts) are counted
// on their workload too, which brings a workload whose pods all lack the proxy into the
// inventory. Pure over the pods and workloads read from the caches.
import { ANNOTATIONS, podRevision, templateRevision } from "../../api/index.ts";
import type { PodView, UpdateStrategyView, WorkloadObjectView } from "../resources.ts";
import { type PodFailure, podFailure } from "./pod-failures.ts";

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
  /** When a rollout last patched its template (trellis.dev/restarted-at), if ever. */
  restartedAt?: string | undefined;
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
  /** A Deployment with spec.paused: a template patch would not roll, and would fire on unpause. */
  paused?: boolean;
  strategy?: UpdateStrategyView | undefined;
  /** The pod template's labels, and the labels of its current injected pods (for PDB selectors). */
  templateLabels?: Record<string, string> | undefined;
  podLabels?: Array<Record<string, string>>;
  /** The template opts its pods out of injection (trellis.dev/inject: disabled). */
  optedOut?: boolean;
  /** The template asks for the host's network: the injector never meshes such pods. */
  hostNetwork?: boolean;
  /** Its pods in a certain failure (image missing, crash loop, ...), with their proxy version. */
  failures?: Array<PodFailure & { version: string }>;
  /** Its pods that should carry the proxy and do not, or whose proxy is out of skew (data-plane.ts). */
  gaps?: { missing: number; outOfSkew: number; newestCreatedAt: number };
}

/** Injected pods that no Deployment, StatefulSet or DaemonSet owns, grouped by their owner. */
export interface OtherPods {
  /** Job (also a CronJob's), Pod (a bare pod), or the kind of another controller (ReplicaSet, ...). */
  kind: string;
  namespace: string;
  name: string;
  key: string;
  /** Pods per proxy version. */
  versions: Map<string, number>;
}

export interface Inventory {
  /** Workloads with an injected pod, a rollout annotation or a data-plane gap, sorted by key. */
  workloads: WorkloadView[];
  /** Running injected pods no such workload owns, sorted by key. */
  others: OtherPods[];
  /** Gap pods no such workload owns (version "" for a pod without a proxy), sorted by key. */
  gapOthers: OtherPods[];
}

/** A gap pod (data-plane.ts) as inventory reads it: the pod and the proxy version it runs ("" for none). */
export interface GapPod {
  pod: PodView;
  version: string;
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

/** A cached Deployment, StatefulSet or DaemonSet with its kind (lists come without one). */
export type WorkloadObject = Pick<WorkloadObjectView, "metadata" | "spec" | "status"> & {
  kind: WorkloadKind;
};

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

/** Succeeded and Failed pods run no proxy any more: they count in no total. */
export function isFinished(pod: PodView): boolean {
  return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
}

function restartsOf(pod: PodView): number {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  return statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0);
}

/** One shape for every view (no optional spreads): thousands are built per reconcile. */
function newView(ref: WorkloadRef, key: string, obj: WorkloadObject): WorkloadView {
  const annotations = obj.spec?.template?.metadata?.annotations;
  return {
    kind: ref.kind,
    namespace: ref.namespace,
    name: ref.name,
    key,
    // The data-plane revision (proxy version and capture mode, api/data-plane-revision.ts).
    templateVersion: templateRevision(annotations),
    restartedAt: annotations?.[ANNOTATIONS.restartedAt],
    labels: obj.metadata?.labels ?? {},
    pods: new Map(),
    replicas:
      obj.kind === "DaemonSet" ? (obj.status?.desiredNumberScheduled ?? 0) : (obj.spec?.replicas ?? 1),
    rolledOut: isRolledOut(obj),
    paused: obj.spec?.paused === true,
    strategy: obj.spec?.strategy,
    templateLabels: obj.spec?.template?.metadata?.labels,
    podLabels: [],
    optedOut: annotations?.[ANNOTATIONS.inject] === "disabled",
    hostNetwork: obj.spec?.template?.spec?.hostNetwork === true,
    failures: [],
    gaps: undefined,
  };
}

/** The pod's controlling owner as "other pods": Job, Pod (none), or the owner's kind. */
function otherOwner(pod: PodView): { kind: string; name: string } {
  const owner = pod.metadata?.ownerReferences?.find((o) => o.controller);
  return owner ? { kind: owner.kind, name: owner.name } : { kind: "Pod", name: pod.metadata?.name ?? "" };
}

/** Kind/namespace/name of what owns the pod: its workload, Job, other controller, or the pod itself. */
export function ownerKey(pod: PodView): string {
  const ref = ownerWorkload(pod);
  if (ref) return workloadKey(ref);
  const o = otherOwner(pod);
  return `${o.kind}/${pod.metadata?.namespace ?? ""}/${o.name}`;
}

/** Milliseconds since the epoch of a pod's creation (0 when unknown). */
export function createdAt(pod: PodView): number {
  const t = pod.metadata?.creationTimestamp;
  return t === undefined ? 0 : Date.parse(String(t instanceof Date ? t.toISOString() : t)) || 0;
}

export function inventory(pods: PodView[], workloads: WorkloadObject[], gaps: GapPod[] = []): Inventory {
  const byKey = new Map<string, WorkloadView>();
  const others = new Map<string, OtherPods>();
  const gapOthers = new Map<string, OtherPods>();
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
      v = newView(ref, key, obj);
      byKey.set(key, v);
    }
    return v;
  };
  for (const pod of pods) {
    const version = podRevision(pod.metadata?.labels);
    if (!version || pod.metadata?.deletionTimestamp || isFinished(pod)) continue;
    const ref = ownerWorkload(pod);
    const v = ref && view(ref);
    if (!v) {
      countOther(others, pod, version);
      continue;
    }
    const counts = v.pods.get(version) ?? { total: 0, ready: 0, restarts: 0 };
    counts.total++;
    if (isReady(pod)) counts.ready++;
    counts.restarts += restartsOf(pod);
    v.pods.set(version, counts);
    if (pod.metadata?.labels) v.podLabels?.push(pod.metadata.labels);
    const failure = podFailure(pod);
    if (failure) v.failures?.push({ ...failure, version });
  }
  for (const { pod, version } of gaps) {
    const ref = ownerWorkload(pod);
    const v = ref && view(ref);
    if (!v) {
      countOther(gapOthers, pod, version);
      continue;
    }
    const g = v.gaps ?? { missing: 0, outOfSkew: 0, newestCreatedAt: 0 };
    if (version === "") g.missing++;
    else g.outOfSkew++;
    g.newestCreatedAt = Math.max(g.newestCreatedAt, createdAt(pod));
    v.gaps = g;
  }
  for (const [key, obj] of objects) {
    if (!byKey.has(key) && obj.spec?.template?.metadata?.annotations?.[ANNOTATIONS.proxyVersion]) {
      view({ kind: obj.kind, namespace: obj.metadata?.namespace ?? "", name: obj.metadata?.name ?? "" });
    }
  }
  return {
    workloads: sortedByKey([...byKey.values()]),
    others: sortedByKey([...others.values()]),
    gapOthers: sortedByKey([...gapOthers.values()]),
  };
}

function countOther(others: Map<string, OtherPods>, pod: PodView, version: string): void {
  const owner = otherOwner(pod);
  const namespace = pod.metadata?.namespace ?? "";
  const key = `${owner.kind}/${namespace}/${owner.name}`;
  let o = others.get(key);
  if (!o) {
    o = { ...owner, namespace, key, versions: new Map() };
    others.set(key, o);
  }
  o.versions.set(version, (o.versions.get(version) ?? 0) + 1);
}

function sortedByKey<T extends { key: string }>(list: T[]): T[] {
  return list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
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

/** Pods of `version` out of all its injected pods, e.g. "1/2 pods Ready on 1.1.0". */
export function describeProgress(w: WorkloadView, version: string): string {
  const at = w.pods.get(version);
  return `${at?.ready ?? 0}/${w.replicas} pods Ready on ${version}`;
}
