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
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } };
  status?: { desiredNumberScheduled?: number };
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

/** A workload runs `version` everywhere: its template asks for it and every pod has it and is Ready. */
export function isDoneAt(w: WorkloadView, version: string): boolean {
  if (w.templateVersion !== version) return false;
  const at = w.pods.get(version);
  const others = [...w.pods.entries()].filter(([v]) => v !== version).reduce((n, [, c]) => n + c.total, 0);
  return others === 0 && (at?.total ?? 0) >= w.replicas && (at?.ready ?? 0) >= w.replicas;
}
