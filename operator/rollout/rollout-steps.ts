// The step engine of a pass of restarts, shared by proxy rollouts (rollout-plan.ts) and
// data-plane repairs (repair-plan.ts): a canary cohort then cumulative waves over the pass's
// workloads in a stable order; in each step the workloads due are restarted (at most
// maxConcurrentRestarts in flight, one at a time under a PodDisruptionBudget), then the step is
// analysed for the configured interval. A certain failure of a restarted pod, a failed analysis
// or a restart not ready by the deadline fails the step (what follows is the pass's: a rollback,
// a halt); a blocked workload holds its step (onBlocked Wait) or halts the pass (Fail). A pass
// says which workloads are its, which are still due, in flight and done; the engine decides the
// rest, the same way for both. Pure.

import type { MeshSpec, MeshStatus } from "../../api/index.ts";
import { counted, parseDuration } from "../../api/index.ts";
import { matchesLabelSelector } from "../../kube/index.ts";
import { heldList, othersOffVersion } from "./rollout-report.ts";
import { blockedText, certainFailure, lateRestarts } from "./step-failures.ts";
import type { PlannedWorkload } from "./workload-plan.ts";
import type { OtherPods, WorkloadView } from "./workloads.ts";

export type Rollout = NonNullable<MeshStatus["rollout"]>;

export type AnalysisVerdict = { healthy: true; detail: string } | { healthy: false; detail: string };

export type Analyse = (
  upgraded: WorkloadView[],
  baseline: WorkloadView[],
  version: string,
) => AnalysisVerdict;

export type RolloutEvent = { type: "Normal" | "Warning"; reason: string; message: string };

export interface RolloutDecision {
  rollout: Rollout | undefined;
  fleetVersion: string;
  /** Workloads to restart onto a version (one template patch each). */
  restart: Array<{ workload: WorkloadView; version: string }>;
  events: RolloutEvent[];
  requeueAfterMs?: number;
  /** A failure to surface as Degraded. */
  failure?: { reason: string; message: string };
  /** What the pass does with each workload, for status, Events and the command line. */
  workloads: PlannedWorkload[];
}

/** What one reconcile of a pass knows. */
export interface StepContext {
  spec: MeshSpec;
  now: Date;
  /** Every workload's decision (workload-plan.ts). */
  planned: PlannedWorkload[];
  /** Pods the pass never restarts (Jobs, CronJob and bare pods): reported as pending. */
  others: OtherPods[];
  analyse: Analyse;
  /** The pass as persisted before this reconcile: transitions (and their Events) are against it. */
  previous: Rollout | undefined;
  events: RolloutEvent[];
}

export interface Pass {
  /** Restarts patch templates onto this version. */
  version: string;
  /** "Proxy 1.1.0", "Data-plane repair": the start of its Events' messages. */
  title: string;
  /** "on 1.1.0", "repaired": progress in messages ("2/5 workloads on 1.1.0"). */
  doneLabel: string;
  /** "upgraded", "repaired": what analysis says of the workloads it judges. */
  analysedLabel: string;
  reasons: { blocked: string; resumed: string; stepPassed: string };
  /** Its workloads (none skipped), in the order its steps take them. */
  members: PlannedWorkload[];
  due(w: WorkloadView): boolean;
  inFlight(w: WorkloadView): boolean;
  done(w: WorkloadView): boolean;
  /** Restarted by this pass: what analysis judges. */
  restarted(w: WorkloadView): boolean;
  fail(rollout: Rollout, detail: string): RolloutDecision;
  complete(rollout: Rollout): RolloutDecision;
  /** The decision of a pass still moving (its fleet version, no restarts yet). */
  decide(rollout: Rollout): RolloutDecision;
}

const PAUSED = "paused by spec.upgrade.paused; set it to false to resume";

/** How many workloads steps 0..n cover: the canary, then each wave's cumulative percentage. */
export function stepTargets(spec: MeshSpec, workloads: WorkloadView[]): WorkloadView[][] {
  const n = workloads.length;
  const canarySelector = spec.upgrade.canary.selector;
  const canary = canarySelector
    ? workloads.filter((w) => matchesLabelSelector(canarySelector, w.labels))
    : workloads.slice(0, Math.max(1, Math.ceil((n * spec.upgrade.canary.percent) / 100)));
  const inCanary = new Set(canary);
  const ordered = [...canary, ...workloads.filter((w) => !inCanary.has(w))];
  const waves = spec.upgrade.strategy === "AllAtOnce" ? [100] : spec.upgrade.waves;
  const targets = [canary];
  for (const pct of waves)
    targets.push(ordered.slice(0, Math.max(canary.length, Math.ceil((n * pct) / 100))));
  return targets;
}

export function stepName(step: number): string {
  return step === 0 ? "canary" : `wave ${step}`;
}

/** Counters and the held list of a pass (blocked ones only of the step, when given). */
export function counts(ctx: StepContext, pass: Pass, inStep?: Set<WorkloadView>) {
  const blocked = ctx.planned.filter(
    (p) => p.action.action === "Blocked" && (inStep === undefined || inStep.has(p.workload)),
  );
  return {
    updatedWorkloads: pass.members.filter((p) => pass.done(p.workload)).length,
    totalWorkloads: pass.members.length,
    blockedWorkloads: blocked.length,
    skippedWorkloads: ctx.planned.filter((p) => p.action.action === "Skip").length,
    pendingPods: othersOffVersion(ctx.others, pass.version),
    held: heldList(blocked, ctx.planned, ctx.others, pass.version),
  };
}

/** The step in progress: pause, fail, restart what is due, analyse, move on or complete. */
export function advance(ctx: StepContext, pass: Pass, current: Rollout): RolloutDecision {
  const { spec, now } = ctx;
  let rollout = current;
  const targets = stepTargets(
    spec,
    pass.members.map((p) => p.workload),
  );
  const step = Math.min(rollout.step, targets.length - 1);
  const inStep = new Set(targets[step] ?? []);
  const status = { ...counts(ctx, pass, inStep), step, steps: targets.length };
  if (spec.upgrade.paused) return pass.decide({ ...rollout, ...status, state: "Paused", message: PAUSED });
  if (rollout.state === "Paused") {
    ctx.events.push({ type: "Normal", reason: pass.reasons.resumed, message: `${pass.title} resumed` });
    rollout = { ...rollout, state: "Restarting", stepStartedAt: now.toISOString(), message: undefined };
  }
  rollout = { ...rollout, ...status };
  const all = pass.members.map((p) => p.workload);
  const upgraded = all.filter((w) => pass.restarted(w));
  const where = `step ${step} (${stepName(step)})`;
  const failed = certainFailure(upgraded, pass.version, now);
  if (failed) return pass.fail(rollout, `${where}: ${failed}`);
  const verdict =
    upgraded.length > 0
      ? ctx.analyse(
          upgraded,
          all.filter((w) => !pass.restarted(w)),
          pass.version,
        )
      : { healthy: true as const, detail: "nothing restarted yet" };
  if (!verdict.healthy) return pass.fail(rollout, `${where}: ${verdict.detail}`);
  const mine = pass.members.filter((p) => inStep.has(p.workload));
  const inFlight = mine.map((p) => p.workload).filter((w) => pass.inFlight(w));
  const late = lateRestarts(inFlight, pass.version, spec.upgrade.stepDeadline, rollout.stepStartedAt, now);
  if (late) return pass.fail(rollout, `${where}: ${late}`);
  const blocked = mine.filter((p) => p.action.action === "Blocked");
  if (blocked.length > 0 && spec.upgrade.onBlocked === "Fail")
    return halt(ctx, pass, rollout, `${where}: ${blockedText(blocked)}`);
  // A step that adds no workload — a wave over the same workloads as the step before it (a small
  // fleet, many waves), or a canary whose selector matches none — has nothing new to watch: it
  // passes at once (the step before it, if any, was analysed over exactly this set).
  const ownWorkloads = step === 0 ? mine.length : mine.length - (targets[step - 1]?.length ?? 0);
  return (
    restartStep(ctx, pass, rollout, mine, blocked) ??
    analyse(ctx, pass, rollout, mine.length, verdict.detail, targets.length, ownWorkloads === 0)
  );
}

/**
 * Restarts what the step still owes, at most maxConcurrentRestarts in flight and one at a time
 * under a budget; undefined when nothing is left to restart, in flight or blocked.
 */
function restartStep(
  ctx: StepContext,
  pass: Pass,
  rollout: Rollout,
  mine: PlannedWorkload[],
  blocked: PlannedWorkload[],
): RolloutDecision | undefined {
  const due = mine.filter((p) => p.action.action === "Restart" && pass.due(p.workload));
  const inFlight = mine.filter((p) => pass.inFlight(p.workload));
  if (due.length === 0 && inFlight.length === 0 && blocked.length === 0) return undefined;
  const room = Math.max(0, ctx.spec.upgrade.maxConcurrentRestarts - inFlight.length);
  const busy = new Set(inFlight.flatMap((p) => p.budgets));
  const picked: PlannedWorkload[] = [];
  for (const p of due) {
    if (picked.length >= room) break;
    if (p.budgets.some((b) => busy.has(b))) continue;
    for (const b of p.budgets) busy.add(b);
    picked.push(p);
  }
  const done = mine.filter((p) => pass.done(p.workload)).length;
  const waiting = blocked.length > 0 ? `; waiting for ${blockedText(blocked)}` : "";
  if (blocked.length > 0 && !(ctx.previous?.blockedWorkloads ?? 0))
    ctx.events.push({
      type: "Warning",
      reason: pass.reasons.blocked,
      message: `${pass.title} ${stepName(rollout.step)} waits for ${blockedText(blocked)}`,
    });
  const message = `${stepName(rollout.step)}: ${done}/${mine.length} workloads ${pass.doneLabel}${waiting}`;
  return {
    ...pass.decide({ ...rollout, state: "Restarting", message }),
    restart: picked.map((p) => ({ workload: p.workload, version: pass.version })),
    requeueAfterMs: 2000,
  };
}

function analyse(
  ctx: StepContext,
  pass: Pass,
  rollout: Rollout,
  size: number,
  detail: string,
  steps: number,
  nothingNew: boolean,
): RolloutDecision {
  const { spec, now } = ctx;
  const step = rollout.step;
  const analysisSince =
    rollout.state === "Analysing" && rollout.analysisSince ? rollout.analysisSince : now.toISOString();
  const waitMs = parseDuration(spec.upgrade.analysis.interval) - (now.getTime() - Date.parse(analysisSince));
  if (!nothingNew && waitMs > 0) {
    const message = `${stepName(step)}: analysing ${counted(size, `${pass.analysedLabel} workload`)} (${detail})`;
    return {
      ...pass.decide({ ...rollout, state: "Analysing", analysisSince, message }),
      requeueAfterMs: Math.min(waitMs, 5000),
    };
  }
  ctx.events.push({
    type: "Normal",
    reason: pass.reasons.stepPassed,
    message: !nothingNew
      ? `${pass.title}: ${stepName(step)} passed analysis (${detail})`
      : step === 0
        ? `${pass.title}: the canary has no workload and passes at once`
        : `${pass.title}: ${stepName(step)} adds no workload to ${stepName(step - 1)} and passes on its analysis`,
  });
  if (step + 1 >= steps) return pass.complete(rollout);
  const next: Rollout = {
    ...rollout,
    step: step + 1,
    state: "Restarting",
    stepStartedAt: now.toISOString(),
    analysisSince: undefined,
    message: `${stepName(step + 1)} starting`,
  };
  return { ...pass.decide(next), requeueAfterMs: 0 };
}

/** A blocked step halts the pass: nothing it restarted is wrong, so nothing is undone. */
export function halt(ctx: StepContext, pass: Pass, rollout: Rollout, detail: string): RolloutDecision {
  ctx.events.push({
    type: "Warning",
    reason: pass.reasons.blocked,
    message: `${pass.title} halted: ${detail}`,
  });
  const message = `${detail}; nothing rolled back. Fix the budget (or set onBlocked), then set spec.upgrade.paused to true and back to false to resume`;
  return {
    ...pass.decide({ ...rollout, state: "Halted", message }),
    failure: { reason: pass.reasons.blocked, message },
  };
}
