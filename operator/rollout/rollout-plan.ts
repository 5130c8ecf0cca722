// A proxy rollout as a pure decision. What happens to each workload is decided first, once
// (workload-plan.ts: restart, skip with a reason, or blocked by a PodDisruptionBudget); the
// workloads the rollout restarts form a canary cohort then cumulative waves in a stable order;
// in each step they are restarted onto the new version (at most maxConcurrentRestarts in
// flight, one at a time under a budget), then the step is analysed for the configured
// interval. A failed analysis, a certain failure (image missing, crash loop) or a restart not
// ready by the deadline pauses the rollout or rolls back the workloads it changed; a blocked
// workload waits, is skipped or halts the step (spec.upgrade.onBlocked), and never causes a
// rollback. Every decision is a function of the Mesh status and the cluster, so a restarted
// operator resumes where its predecessor stopped, and a workload whose template already asks
// for the version is never restarted again.
import type { MeshSpec, MeshStatus } from "../../api/index.ts";
import { parseDuration } from "../../api/index.ts";
import { matchesLabelSelector } from "../../kube/index.ts";
import { heldList, othersOffVersion, pendingSummary } from "./rollout-report.ts";
import { blockedText, certainFailure, lateRestarts } from "./step-failures.ts";
import { type DisruptionBudgetView, type PlannedWorkload, planWorkloads } from "./workload-plan.ts";
import { isDoneAt, type OtherPods, type WorkloadView } from "./workloads.ts";

export type Rollout = NonNullable<MeshStatus["rollout"]>;

export type AnalysisVerdict = { healthy: true; detail: string } | { healthy: false; detail: string };

export interface RolloutInput {
  spec: MeshSpec;
  /** The fleet's version outside a rollout (status.proxies.version), when known. */
  fleetVersion: string | undefined;
  target: string;
  rollout: Rollout | undefined;
  workloads: WorkloadView[];
  /** Injected pods no restartable workload owns (Jobs, CronJob and bare pods): reported, never restarted. */
  others?: OtherPods[];
  budgets?: DisruptionBudgetView[];
  /** Health of the upgraded workloads (pods, and Prometheus figures when configured). */
  analyse: (upgraded: WorkloadView[], baseline: WorkloadView[], version: string) => AnalysisVerdict;
  now: Date;
}

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
  /** What the rollout does with each workload, for status, Events and the command line. */
  workloads: PlannedWorkload[];
}

interface Ctx {
  input: RolloutInput;
  planned: PlannedWorkload[];
  events: RolloutEvent[];
}

const isSkipped = (p: PlannedWorkload) => p.action.action === "Skip";

/** How many workloads steps 0..n cover: the canary, then each wave's cumulative percentage. */
export function stepTargets(spec: MeshSpec, workloads: WorkloadView[]): WorkloadView[][] {
  const n = workloads.length;
  const canarySelector = spec.upgrade.canary.selector;
  const canary = canarySelector
    ? workloads.filter((w) => matchesLabelSelector(canarySelector, w.labels))
    : workloads.slice(0, Math.max(1, Math.ceil((n * spec.upgrade.canary.percent) / 100)));
  const rest = workloads.filter((w) => !canary.includes(w));
  const ordered = [...canary, ...rest];
  const waves = spec.upgrade.strategy === "AllAtOnce" ? [100] : spec.upgrade.waves;
  const targets = [canary];
  for (const pct of waves)
    targets.push(ordered.slice(0, Math.max(canary.length, Math.ceil((n * pct) / 100))));
  return targets;
}

export function stepName(step: number): string {
  return step === 0 ? "canary" : `wave ${step}`;
}

/** The rollout changed this workload's template: a rollback or a revert puts it back. */
export function changedBy(rollout: Rollout, w: WorkloadView): boolean {
  if (w.templateVersion === undefined) return false;
  if (rollout.startedAt) return (w.restartedAt ?? "") >= rollout.startedAt;
  return w.templateVersion === rollout.toVersion;
}

export function planRollout(input: RolloutInput): RolloutDecision {
  const { spec, target, now } = input;
  const fleet = input.fleetVersion ?? target;
  let rollout = input.rollout;
  const settledOn =
    rollout?.toVersion === target && rollout.state === "RolledBack" ? rollout.fromVersion : target;
  const planned = planWorkloads({
    workloads: input.workloads,
    budgets: input.budgets ?? [],
    target: settledOn,
    onBlocked: spec.upgrade.onBlocked,
    now,
  });
  const ctx: Ctx = { input, planned, events: [] };
  if (rollout?.toVersion === target) {
    if (rollout.state === "Complete") return settle(ctx, rollout, target);
    if (rollout.state === "RolledBack") return settle(ctx, rollout, rollout.fromVersion);
    if (rollout.state === "Halted") {
      if (!spec.upgrade.paused) return held(ctx, rollout);
      rollout = {
        ...rollout,
        state: "Paused",
        message: "paused by spec.upgrade.paused; set it to false to resume",
      };
    }
  } else {
    const unfinished = rollout && rollout.state !== "Complete" ? rollout : undefined;
    const from = unfinished ? unfinished.fromVersion : fleet;
    if (from === target) {
      if (!unfinished) return { rollout, fleetVersion: target, restart: [], events: [], workloads: planned };
      return revert(ctx, unfinished);
    }
    const started = start(ctx, from, unfinished?.startedAt ?? now.toISOString());
    if (started.state !== "Restarting") return settle(ctx, started, target);
    const blocked = planned.filter((p) => p.action.action === "Blocked");
    if (blocked.length > 0 && spec.upgrade.onBlocked === "Fail")
      return halt(ctx, started, `before anything was restarted: ${blockedText(blocked)}`);
    rollout = started;
  }
  return advance(ctx, rollout);
}

/** A new rollout (or one whose target changed): its first step, or Complete when nothing is to restart. */
function start(ctx: Ctx, from: string, startedAt: string): Rollout {
  const { spec, target, now } = ctx.input;
  const eligible = ctx.planned.filter((p) => !isSkipped(p)).map((p) => p.workload);
  const report = pendingSummary(ctx.planned, ctx.input.others ?? [], target);
  const base = { fromVersion: from, toVersion: target, startedAt, ...counts(ctx, target) };
  if (eligible.length === 0) {
    const message = report ? `no workload to restart; ${report}` : "no meshed workloads";
    return { ...base, step: 0, steps: 0, state: "Complete", message };
  }
  ctx.events.push({
    type: "Normal",
    reason: "RolloutStarted",
    message: `Rolling out proxy ${target} (from ${from}) to ${eligible.length} workloads: canary first${report ? `; ${report}` : ""}`,
  });
  return {
    ...base,
    step: 0,
    steps: stepTargets(spec, eligible).length,
    state: "Restarting",
    stepStartedAt: now.toISOString(),
  };
}

/** Counters and the held list of status.rollout, against the version the fleet moves to. */
function counts(ctx: Ctx, version: string, inStep?: Set<WorkloadView>) {
  const eligible = ctx.planned.filter((p) => !isSkipped(p));
  const blocked = ctx.planned.filter(
    (p) => p.action.action === "Blocked" && (inStep === undefined || inStep.has(p.workload)),
  );
  return {
    updatedWorkloads: eligible.filter((p) => isDoneAt(p.workload, version)).length,
    totalWorkloads: eligible.length,
    blockedWorkloads: blocked.length,
    skippedWorkloads: ctx.planned.filter(isSkipped).length,
    pendingPods: othersOffVersion(ctx.input.others ?? [], version),
    held: heldList(blocked, ctx.planned, ctx.input.others ?? [], version),
  };
}

/**
 * A settled rollout (Complete, RolledBack): every workload it changed ends on `version` (a
 * revert's or rollback's patches are retried from here after a failure); nothing else moves.
 */
function settle(ctx: Ctx, rollout: Rollout, version: string): RolloutDecision {
  const restart = ctx.planned
    .filter((p) => !isSkipped(p) && changedBy(rollout, p.workload) && p.workload.templateVersion !== version)
    .map((p) => ({ workload: p.workload, version }));
  const decision: RolloutDecision = {
    rollout,
    fleetVersion: version,
    restart,
    events: ctx.events,
    workloads: ctx.planned,
  };
  if (rollout.state === "RolledBack")
    decision.failure = {
      reason: "RolloutFailed",
      message: `proxy ${rollout.toVersion} rolled back to ${rollout.fromVersion}: ${rollout.message ?? "rolled back"}`,
    };
  return decision;
}

function held(ctx: Ctx, rollout: Rollout): RolloutDecision {
  return {
    rollout,
    fleetVersion: rollout.fromVersion,
    restart: [],
    events: ctx.events,
    workloads: ctx.planned,
    failure: { reason: "RolloutHalted", message: rollout.message ?? "halted" },
  };
}

/** The target went back to the version the fleet was moving from: undo at once. */
function revert(ctx: Ctx, rollout: Rollout): RolloutDecision {
  const { target } = ctx.input;
  const reverted: Rollout = {
    ...rollout,
    toVersion: target,
    state: "Complete",
    message: `reverted to ${target}`,
  };
  const decision = settle(ctx, { ...rollout, state: "Complete" }, target);
  ctx.events.push({
    type: "Normal",
    reason: "RolloutReverted",
    message: `Proxy version set back to ${target}: ${decision.restart.length} workloads restarted onto it`,
  });
  return { ...decision, rollout: reverted };
}

/** The step in progress: pause, fail, restart what is due, analyse, move on or complete. */
function advance(ctx: Ctx, current: Rollout): RolloutDecision {
  const { spec, target, now } = ctx.input;
  let rollout = current;
  const eligible = ctx.planned.filter((p) => !isSkipped(p));
  const targets = stepTargets(
    spec,
    eligible.map((p) => p.workload),
  );
  const step = Math.min(rollout.step, targets.length - 1);
  const inStep = new Set(targets[step] ?? []);
  const status = { ...counts(ctx, target, inStep), step };
  if (spec.upgrade.paused) {
    const message = "paused by spec.upgrade.paused; set it to false to resume";
    return decide(ctx, { ...rollout, ...status, state: "Paused", message });
  }
  if (rollout.state === "Paused") {
    ctx.events.push({ type: "Normal", reason: "RolloutResumed", message: `Proxy ${target} rollout resumed` });
    rollout = { ...rollout, state: "Restarting", stepStartedAt: now.toISOString(), message: undefined };
  }
  const upgraded = eligible.map((p) => p.workload).filter((w) => w.templateVersion === target);
  const baseline = eligible.map((p) => p.workload).filter((w) => w.templateVersion !== target);
  const where = `step ${step} (${stepName(step)})`;
  const failed = certainFailure(upgraded, target, now);
  if (failed) return fail(ctx, rollout, `${where}: ${failed}`);
  const verdict =
    upgraded.length > 0
      ? ctx.input.analyse(upgraded, baseline, target)
      : { healthy: true as const, detail: "nothing upgraded yet" };
  if (!verdict.healthy) return fail(ctx, rollout, `${where}: ${verdict.detail}`);
  const mine = eligible.filter((p) => inStep.has(p.workload));
  const late = lateRestarts(
    mine.map((p) => p.workload),
    target,
    spec.upgrade.stepDeadline,
    rollout.stepStartedAt,
    now,
  );
  if (late) return fail(ctx, rollout, `${where}: ${late}`);
  const blocked = mine.filter((p) => p.action.action === "Blocked");
  if (blocked.length > 0 && spec.upgrade.onBlocked === "Fail")
    return halt(ctx, { ...rollout, ...status }, `${where}: ${blockedText(blocked)}`);
  const restarting = restartStep(ctx, { ...rollout, ...status }, mine, blocked);
  if (restarting) return restarting;
  return analyse(ctx, { ...rollout, ...status }, mine.length, verdict.detail, targets.length);
}

/**
 * Restarts what the step still owes, at most maxConcurrentRestarts in flight and one at a time
 * under a budget; undefined when nothing is left to restart, in flight or blocked.
 */
function restartStep(
  ctx: Ctx,
  rollout: Rollout,
  mine: PlannedWorkload[],
  blocked: PlannedWorkload[],
): RolloutDecision | undefined {
  const { spec, target } = ctx.input;
  const due = mine.filter((p) => p.action.action === "Restart" && p.workload.templateVersion !== target);
  const inFlight = mine.filter((p) => p.workload.templateVersion === target && !isDoneAt(p.workload, target));
  if (due.length === 0 && inFlight.length === 0 && blocked.length === 0) return undefined;
  const room = Math.max(0, spec.upgrade.maxConcurrentRestarts - inFlight.length);
  const busy = new Set(inFlight.flatMap((p) => p.budgets));
  const picked: PlannedWorkload[] = [];
  for (const p of due) {
    if (picked.length >= room) break;
    if (p.budgets.some((b) => busy.has(b))) continue;
    for (const b of p.budgets) busy.add(b);
    picked.push(p);
  }
  const done = mine.length - due.length - inFlight.length - blocked.length;
  const waiting = blocked.length > 0 ? `; waiting for ${blockedText(blocked)}` : "";
  if (blocked.length > 0 && !(ctx.input.rollout?.blockedWorkloads ?? 0))
    ctx.events.push({
      type: "Warning",
      reason: "RolloutBlocked",
      message: `Proxy ${target} ${stepName(rollout.step)} waits for ${blockedText(blocked)}`,
    });
  const message = `${stepName(rollout.step)}: ${done}/${mine.length} workloads on ${target}${waiting}`;
  return {
    ...decide(ctx, { ...rollout, state: "Restarting", message }),
    restart: picked.map((p) => ({ workload: p.workload, version: target })),
    requeueAfterMs: 2000,
  };
}

function analyse(ctx: Ctx, rollout: Rollout, size: number, detail: string, steps: number): RolloutDecision {
  const { spec, target, now } = ctx.input;
  const step = rollout.step;
  const analysisSince =
    rollout.state === "Analysing" && rollout.analysisSince ? rollout.analysisSince : now.toISOString();
  const waitMs = parseDuration(spec.upgrade.analysis.interval) - (now.getTime() - Date.parse(analysisSince));
  if (waitMs > 0) {
    const message = `${stepName(step)}: analysing ${size} upgraded workloads (${detail})`;
    return {
      ...decide(ctx, { ...rollout, state: "Analysing", analysisSince, message }),
      requeueAfterMs: Math.min(waitMs, 5000),
    };
  }
  ctx.events.push({
    type: "Normal",
    reason: "StepPassed",
    message: `Proxy ${target}: ${stepName(step)} passed analysis (${detail})`,
  });
  if (step + 1 >= steps) return complete(ctx, rollout);
  const next: Rollout = {
    ...rollout,
    step: step + 1,
    state: "Restarting",
    stepStartedAt: now.toISOString(),
    analysisSince: undefined,
    message: `${stepName(step + 1)} starting`,
  };
  return { ...decide(ctx, next), requeueAfterMs: 0 };
}

function complete(ctx: Ctx, rollout: Rollout): RolloutDecision {
  const { target } = ctx.input;
  const c = counts(ctx, target);
  const report = pendingSummary(ctx.planned, ctx.input.others ?? [], target);
  ctx.events.push({
    type: "Normal",
    reason: "RolloutComplete",
    message: report
      ? `Proxy ${target} runs on all ${c.totalWorkloads} workloads the rollout restarts; ${report}`
      : `Every meshed workload runs proxy ${target}`,
  });
  const message = `all ${c.totalWorkloads} workloads on ${target}${report ? `; ${report}` : ""}`;
  return {
    rollout: { ...rollout, ...c, state: "Complete", analysisSince: undefined, message },
    fleetVersion: target,
    restart: [],
    events: ctx.events,
    workloads: ctx.planned,
  };
}

/** A rollout still moving: the fleet stays on the version it moves from. */
function decide(ctx: Ctx, rollout: Rollout): RolloutDecision {
  return {
    rollout,
    fleetVersion: rollout.fromVersion,
    restart: [],
    events: ctx.events,
    workloads: ctx.planned,
  };
}

/** A blocked step halts the rollout: nothing it restarted is wrong, so nothing is rolled back. */
function halt(ctx: Ctx, rollout: Rollout, detail: string): RolloutDecision {
  ctx.events.push({
    type: "Warning",
    reason: "RolloutBlocked",
    message: `Proxy ${rollout.toVersion} halted: ${detail}`,
  });
  const message = `${detail}; nothing rolled back. Fix the budget (or set onBlocked), then set spec.upgrade.paused to true and back to false to resume`;
  return {
    ...decide(ctx, { ...rollout, state: "Halted", message }),
    failure: { reason: "RolloutBlocked", message },
  };
}

function fail(ctx: Ctx, rollout: Rollout, detail: string): RolloutDecision {
  if (ctx.input.spec.upgrade.onFailure === "Pause") {
    ctx.events.push({
      type: "Warning",
      reason: "RolloutHalted",
      message: `Proxy ${rollout.toVersion} halted: ${detail}`,
    });
    return {
      ...decide(ctx, { ...rollout, state: "Halted", message: detail }),
      failure: { reason: "RolloutFailed", message: detail },
    };
  }
  const back: Rollout = { ...rollout, state: "RolledBack", message: detail };
  const decision = settle(ctx, back, rollout.fromVersion);
  ctx.events.push({
    type: "Warning",
    reason: "RolledBack",
    message: `Proxy ${rollout.toVersion} rolled back to ${rollout.fromVersion} on ${decision.restart.length} workloads: ${detail}`,
  });
  return decision;
}
