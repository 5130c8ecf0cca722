// How a rollout tells people what it does not restart: the held list of status.rollout (the
// first few workloads blocked by a PodDisruptionBudget, skipped, or pods pending until they
// end), the one-line summary its messages and Events carry, and status.proxies (the PROXIES
// column of `kubectl get meshes`). Reads the plan's decisions
// (workload-plan.ts) and the pods no restartable workload owns; decides nothing. Pure.
import { counted, type MeshStatus, podRevision } from "../../api/index.ts";
import type { PodView } from "../resources.ts";
import { describeWorkload, type PlannedWorkload } from "./workload-plan.ts";
import { isFinished, type OtherPods } from "./workloads.ts";

export interface Held {
  workload: string;
  reason: string;
  message: string;
}

/** Entries in status.rollout.held; the counters say how many there are in all. */
export const MAX_HELD = 5;
/** Names in a one-line summary before "and N more". */
const MAX_NAMES = 3;

function offVersion(o: OtherPods, version: string): number {
  let n = 0;
  for (const [v, count] of o.versions) if (v !== version) n += count;
  return n;
}

/** Pods of Jobs, CronJobs, bare pods and other controllers that run another version than `version`. */
export function othersOffVersion(others: OtherPods[], version: string): number {
  return others.reduce((n, o) => n + offVersion(o, version), 0);
}

function otherReason(o: OtherPods): { reason: string; why: string } {
  if (o.kind === "Job")
    return { reason: "RunsToCompletion", why: "it gets the version when its Job creates a new pod" };
  if (o.kind === "Pod")
    return { reason: "BarePod", why: "a bare pod gets the version only when it is re-created" };
  return { reason: "NotRestartable", why: `Trellis does not restart a ${o.kind}'s pods` };
}

/** Why pods no restartable workload owns keep another version (status.rollout.held, the CLI's plan). */
export function otherEntry(o: OtherPods, version: string): Held {
  const n = offVersion(o, version);
  const versions = [...o.versions.keys()].filter((v) => v !== version);
  const on = versions.map((v) => (v === "" ? "without a proxy" : `on ${v}`)).join(", ");
  const { reason, why } = otherReason(o);
  return { workload: o.key, reason, message: `${counted(n, "pod")} ${on}; ${why}` };
}

export function heldList(
  blocked: PlannedWorkload[],
  planned: PlannedWorkload[],
  others: OtherPods[],
  version: string,
): Held[] {
  const out: Held[] = [];
  for (const p of [...blocked, ...planned.filter((x) => x.action.action === "Skip")]) {
    if (out.length >= MAX_HELD) return out;
    if (p.action.action === "Restart") continue;
    out.push({ workload: p.workload.key, reason: p.action.reason, message: p.action.message });
  }
  for (const o of others) {
    if (out.length >= MAX_HELD) break;
    if (offVersion(o, version) > 0) out.push(otherEntry(o, version));
  }
  return out;
}

function names(list: string[]): string {
  const more = list.length > MAX_NAMES ? `, and ${list.length - MAX_NAMES} more` : "";
  return `${list.slice(0, MAX_NAMES).join(", ")}${more}`;
}

/**
 * "2 workloads skipped (Deployment shop/frozen: Paused, ...); 3 pods pending until they end
 * (Job shop/report, Pod shop/debug)", or "" when the rollout leaves nothing behind.
 */
export function pendingSummary(planned: PlannedWorkload[], others: OtherPods[], version: string): string {
  const parts: string[] = [];
  const skipped = planned.filter((p) => p.action.action === "Skip");
  if (skipped.length > 0) {
    const list = skipped.map(
      (p) => `${describeWorkload(p.workload)}: ${"reason" in p.action ? p.action.reason : ""}`,
    );
    parts.push(`${counted(skipped.length, "workload")} skipped (${names(list)})`);
  }
  const pending = others.filter((o) => offVersion(o, version) > 0);
  const pods = othersOffVersion(others, version);
  if (pods > 0) {
    const list = pending.map((o) => `${o.kind} ${o.namespace}/${o.name}`);
    parts.push(`${counted(pods, "pod")} pending until they end or are re-created (${names(list)})`);
  }
  return parts.join("; ");
}

/** The data plane's gaps as status.proxies reports them (data-plane.ts). */
export interface GapTotals {
  missing: number;
  outOfSkew: number;
  owners: Array<{ key: string; missing: number; outOfSkew: number }>;
}

/**
 * status.proxies: running injected pods (finished ones count nowhere), those on `version`, and
 * of the others those no rollout will restart (pending) or that the rollout skipped; pods that
 * should carry a proxy and do not, and proxies out of skew. The summary is "updated/total",
 * then "(3 pending, 2 skipped, 1 missing, 1 out of skew)" for what is not zero.
 */
export function proxyStatus(
  pods: PodView[],
  planned: PlannedWorkload[],
  others: OtherPods[],
  version: string,
  fleetVersion: string,
  gaps: GapTotals = { missing: 0, outOfSkew: 0, owners: [] },
): NonNullable<MeshStatus["proxies"]> {
  let total = 0;
  let updated = 0;
  for (const p of pods) {
    if (p.metadata?.deletionTimestamp || isFinished(p)) continue;
    total++;
    if (podRevision(p.metadata?.labels) === version) updated++;
  }
  const pending = othersOffVersion(others, version);
  let skipped = 0;
  for (const p of planned) {
    if (p.action.action !== "Skip") continue;
    for (const [v, c] of p.workload.pods) if (v !== version) skipped += c.total;
  }
  const notes = [
    pending > 0 ? `${pending} pending` : "",
    skipped > 0 ? `${skipped} skipped` : "",
    gaps.missing > 0 ? `${gaps.missing} missing` : "",
    gaps.outOfSkew > 0 ? `${gaps.outOfSkew} out of skew` : "",
  ].filter(Boolean);
  return {
    total,
    updated,
    ...(pending > 0 ? { pending } : {}),
    ...(skipped > 0 ? { skipped } : {}),
    ...(gaps.missing > 0 ? { missing: gaps.missing } : {}),
    ...(gaps.outOfSkew > 0 ? { outOfSkew: gaps.outOfSkew } : {}),
    ...(gaps.owners.length > 0
      ? {
          incomplete: gaps.owners
            .slice(0, MAX_HELD)
            .map((o) => ({ workload: o.key, missing: o.missing, outOfSkew: o.outOfSkew })),
        }
      : {}),
    summary: `${updated}/${total}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}`,
    version: fleetVersion,
  };
}
