// What a proxy rollout does with each workload, decided once, up front, from what the cluster
// shows: restart it (the way `kubectl rollout restart` does), skip it with a reason, or hold it
// because a PodDisruptionBudget allows no disruption now. Status, Events, the rollout's steps
// and the command line all read this decision; none re-derives it.
//
// Skipped, because a template patch could not work or would do harm: pods that opt out of the
// mesh or use the host's network (the injector never meshes them), a paused Deployment (the
// patch would not roll, and would fire on unpause), an OnDelete update strategy or a
// StatefulSet partition (the patch restarts no pod, or not all), pods already in a certain
// failure before the rollout (its restart could only fail the step).
//
// PodDisruptionBudgets: a rolling update is not an eviction (the API server checks no budget
// for it), but a budget is its owner's word on how much disruption is acceptable, so Trellis
// checks it itself. A workload is *blocked* when a budget that selects its pods (matchLabels and
// matchExpressions, on its template's labels or its pods' labels) allows fewer disruptions now
// than its restart takes pods down at once: a Deployment's resolved maxUnavailable (0 for a
// surge-only rolling update, which never lowers availability and so is never blocked; all
// replicas for Recreate), a StatefulSet's maxUnavailable (default 1), a DaemonSet's
// maxUnavailable (0 with maxSurge). While another workload under the same budget is restarting,
// the wait is Trellis's own doing: that workload is queued, not blocked, and restarts under one
// budget go one at a time. spec.upgrade.onBlocked says what a blocked workload does to its
// step: Wait (hold the step, say why), Skip (leave it, report it) or Fail (fail the step).
import { counted } from "../../api/index.ts";
import { formatLabelSelector, type LabelSelector, matchesLabelSelector } from "../../kube/index.ts";
import { describeFailure, pastGrace } from "./pod-failures.ts";
import { isDoneAt, type WorkloadView } from "./workloads.ts";

export type OnBlocked = "Wait" | "Skip" | "Fail";

export type SkipReason =
  | "OptedOut"
  | "HostNetwork"
  | "Paused"
  | "OnDeleteStrategy"
  | "Partitioned"
  | "Failing"
  | "DisruptionBudget"
  /** Repairs only (repair-plan.ts). */
  | "RestartDidNotHelp"
  | "FleetOutOfSkew";

export type WorkloadAction =
  | { action: "Restart" }
  | { action: "Blocked"; reason: "DisruptionBudget"; message: string }
  | { action: "Skip"; reason: SkipReason; message: string };

export interface DisruptionBudgetView {
  namespace: string;
  name: string;
  /** Absent selects no pod, empty ({}) every pod of the namespace (policy/v1). */
  selector: LabelSelector | null | undefined;
  disruptionsAllowed: number;
}

/** A PodDisruptionBudget as the plan reads it (the rollout controller's cache, the command line's list). */
export function disruptionBudgetView(b: {
  metadata?: { namespace?: string; name?: string };
  spec?: { selector?: unknown };
  status?: { disruptionsAllowed?: number };
}): DisruptionBudgetView {
  return {
    namespace: b.metadata?.namespace ?? "",
    name: b.metadata?.name ?? "",
    selector: b.spec?.selector as LabelSelector | undefined,
    disruptionsAllowed: b.status?.disruptionsAllowed ?? 0,
  };
}

export interface PlannedWorkload {
  workload: WorkloadView;
  action: WorkloadAction;
  /** Budgets (namespace/name) that select its pods where its restart takes pods down. */
  budgets: string[];
}

export interface WorkloadPlanInput {
  workloads: WorkloadView[];
  budgets: DisruptionBudgetView[];
  /** The version the workloads are being moved to. */
  target: string;
  onBlocked: OnBlocked;
  now: Date;
}

export function describeWorkload(w: { kind: string; namespace: string; name: string }): string {
  return `${w.kind} ${w.namespace}/${w.name}`;
}

/** An int-or-percent of `total`, as Kubernetes resolves maxUnavailable and maxSurge. */
export function scaledValue(v: number | string | undefined, total: number, roundUp: boolean): number {
  if (v === undefined) return 0;
  if (typeof v === "number") return v;
  const pct = Number.parseInt(v.replace("%", ""), 10);
  if (Number.isNaN(pct)) return 0;
  const exact = (pct * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** How many of its pods a workload's own update strategy takes down at once when its template changes. */
export function podsTakenDown(w: WorkloadView): number {
  const n = w.replicas;
  if (n <= 0) return 0;
  const s = w.strategy ?? {};
  if (w.kind === "Deployment") {
    if (s.type === "Recreate") return n;
    const unavailable = scaledValue(s.maxUnavailable ?? "25%", n, false);
    const surge = scaledValue(s.maxSurge ?? "25%", n, true);
    return Math.min(n, unavailable === 0 && surge === 0 ? 1 : unavailable);
  }
  if (s.type === "OnDelete") return 0;
  if (w.kind === "DaemonSet") {
    const surge = scaledValue(s.maxSurge ?? 0, n, true);
    const unavailable = scaledValue(s.maxUnavailable ?? 1, n, true);
    return Math.min(n, surge > 0 ? unavailable : Math.max(1, unavailable));
  }
  return Math.min(n, Math.max(1, scaledValue(s.maxUnavailable ?? 1, n, true)));
}

function selects(b: DisruptionBudgetView, w: WorkloadView): boolean {
  if (b.namespace !== w.namespace) return false;
  if (matchesLabelSelector(b.selector, w.templateLabels)) return true;
  return (w.podLabels ?? []).some((labels) => matchesLabelSelector(b.selector, labels));
}

/** Reasons a template patch could not work (or would harm), checked before any budget. */
function skipReason(w: WorkloadView, target: string, now: Date): WorkloadAction | undefined {
  const skip = (reason: SkipReason, message: string): WorkloadAction => ({ action: "Skip", reason, message });
  if (isDoneAt(w, target)) return undefined;
  if (w.optedOut) return skip("OptedOut", "its pods opt out of the mesh (trellis.dev/inject: disabled)");
  if (w.hostNetwork) return skip("HostNetwork", "its pods use the host's network, which is never meshed");
  if (w.paused)
    return skip("Paused", "the Deployment is paused: a restart would not roll, and would fire on unpause");
  if (w.strategy?.type === "OnDelete")
    return skip("OnDeleteStrategy", "its update strategy is OnDelete: a template change restarts no pod");
  const partition = w.strategy?.partition ?? 0;
  if (w.kind === "StatefulSet" && partition > 0)
    return skip("Partitioned", `its rollingUpdate.partition (${partition}) keeps pods on the old template`);
  if (w.templateVersion !== target) {
    const failing = (w.failures ?? []).find((f) => f.version !== target && pastGrace(f, now));
    if (failing)
      return skip("Failing", `its pods were failing before its restart: ${describeFailure(failing)}`);
  }
  return undefined;
}

export function planWorkloads(input: WorkloadPlanInput): PlannedWorkload[] {
  const { target, now } = input;
  const planned = input.workloads.map((workload): PlannedWorkload => {
    const down = podsTakenDown(workload);
    const budgets =
      down === 0
        ? []
        : input.budgets.filter((b) => selects(b, workload)).map((b) => `${b.namespace}/${b.name}`);
    return { workload, action: skipReason(workload, target, now) ?? { action: "Restart" }, budgets };
  });
  // Budgets a restart in flight is using: waiting on those is waiting on ourselves.
  const busy = new Set<string>();
  for (const p of planned)
    if (
      p.action.action === "Restart" &&
      p.workload.templateVersion === target &&
      !isDoneAt(p.workload, target)
    )
      for (const b of p.budgets) busy.add(b);
  const byKey = new Map(input.budgets.map((b) => [`${b.namespace}/${b.name}`, b]));
  for (const p of planned) {
    if (p.action.action !== "Restart" || p.workload.templateVersion === target) continue;
    const down = podsTakenDown(p.workload);
    const limiting = p.budgets
      .map((k) => byKey.get(k) as DisruptionBudgetView)
      .find((b) => !busy.has(`${b.namespace}/${b.name}`) && b.disruptionsAllowed < down);
    if (!limiting) continue;
    const message = `PodDisruptionBudget ${limiting.namespace}/${limiting.name} (${formatLabelSelector(limiting.selector)}) allows ${counted(limiting.disruptionsAllowed, "disruption")}; its restart takes down ${counted(down, "pod")} at a time`;
    p.action =
      input.onBlocked === "Skip"
        ? { action: "Skip", reason: "DisruptionBudget", message }
        : { action: "Blocked", reason: "DisruptionBudget", message };
  }
  return planned;
}
