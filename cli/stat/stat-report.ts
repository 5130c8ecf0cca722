// `stat`'s rows: the pods of the chosen namespaces grouped by workload (the operator's
// ownerWorkload; Jobs and bare pods by their own names), meshed pods out of all, and per
// direction the golden figures of the traffic summed over the workload's pods. Pure.
import type { V1Pod } from "@kubernetes/client-node";
import { LABELS } from "../../api/index.ts";
import type { PodView } from "../../operator/resources.ts";
import { ownerWorkload } from "../../operator/rollout/workloads.ts";
import type { PodTraffic } from "./stat-sources.ts";
import {
  addTraffic,
  DIRECTIONS,
  type Direction,
  emptyTraffic,
  type GoldenFigures,
  goldenFigures,
} from "./traffic.ts";

export interface StatRow {
  namespace: string;
  /** kind/name, e.g. deployment/server; pod/NAME for a bare pod. */
  workload: string;
  meshedPods: number;
  totalPods: number;
  direction: Direction;
  figures: GoldenFigures;
}

export interface StatReport {
  source: string;
  window: string;
  rows: StatRow[];
  unreachable: Array<{ pod: string; reason: string }>;
}

export function workloadOf(p: V1Pod): string {
  const w = ownerWorkload(p as PodView);
  if (w) return `${w.kind.toLowerCase()}/${w.name}`;
  const o = p.metadata?.ownerReferences?.find((r) => r.controller);
  return o ? `${o.kind.toLowerCase()}/${o.name}` : `pod/${p.metadata?.name}`;
}

const live = (p: V1Pod) =>
  !p.metadata?.deletionTimestamp && !["Succeeded", "Failed"].includes(p.status?.phase ?? "");

export function statReport(
  pods: V1Pod[],
  traffic: PodTraffic[],
  options: {
    source: string;
    window: string;
    windowSeconds: number | undefined;
    unreachable: StatReport["unreachable"];
  },
): StatReport {
  const groups = new Map<string, { namespace: string; workload: string; pods: V1Pod[] }>();
  for (const p of pods.filter(live)) {
    const namespace = p.metadata?.namespace ?? "";
    const workload = workloadOf(p);
    const k = `${namespace}/${workload}`;
    const g = groups.get(k) ?? { namespace, workload, pods: [] };
    g.pods.push(p);
    groups.set(k, g);
  }
  const byPod = new Map(traffic.map((t) => [t.pod, t.traffic]));
  const rows: StatRow[] = [];
  for (const g of [...groups.values()].sort((a, b) =>
    `${a.namespace}/${a.workload}`.localeCompare(`${b.namespace}/${b.workload}`),
  )) {
    const meshed = g.pods.filter((p) => p.metadata?.labels?.[LABELS.proxyVersion]);
    const sum = emptyTraffic();
    for (const p of meshed) {
      const t = byPod.get(`${p.metadata?.namespace}/${p.metadata?.name}`);
      if (t) addTraffic(sum, t);
    }
    for (const direction of DIRECTIONS)
      rows.push({
        namespace: g.namespace,
        workload: g.workload,
        meshedPods: meshed.length,
        totalPods: g.pods.length,
        direction,
        figures: goldenFigures(sum, direction, options.windowSeconds),
      });
  }
  return { source: options.source, window: options.window, rows, unreachable: options.unreachable };
}
