// A proxy rollout as a pure decision. What happens to each workload is decided first, once
// (workload-plan.ts: restart, skip with a reason, or blocked by a PodDisruptionBudget); the
// workloads the rollout restarts go through the canary and the waves (rollout-steps.ts). A
// failed step pauses the rollout or rolls back the workloads it changed; a blocked workload
// waits, is skipped or halts the rollout (spec.upgrade.onBlocked), and never causes a rollback.
// Every decision is a function of the Mesh status and the cluster, so a restarted operator
// resumes where its predecessor stopped, and a workload whose template already asks for the
// version is never restarted again.
import { counted, type MeshSpec } from "../../api/index.ts";
import { pendingSummary } from "./rollout-report.ts";
import {
  type Analyse,
  advance,
  counts,
  halt,
  type Pass,
  type Rollout,
  type RolloutDecision,
  type StepContext,
  stepTargets,
} from "./rollout-steps.ts";
import { blockedText } from "./step-failures.ts";
import { type DisruptionBudgetView, type PlannedWorkload, planWorkloads } from "./workload-plan.ts";
import { isDoneAt, type OtherPods, type WorkloadView } from "./workloads.ts";

export {
  type AnalysisVerdict,
  type Rollout,
  type RolloutDecision,
  type RolloutEvent,
  stepName,
  stepTargets,
} from "./rollout-steps.ts";

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
  analyse: Analyse;
  now: Date;
}

interface Ctx extends StepContext {
  input: RolloutInput;
}

const isSkipped = (p: PlannedWorkload) => p.action.action === "Skip";

/** The rollout changed this workload's template: a rollback or a revert puts it back. */
export function changedBy(rollout: Rollout, w: WorkloadView): boolean {
  if (w.templateVersion === undefined) return false;
  if (rollout.startedAt) return (w.restartedAt ?? "") >= rollout.startedAt;
  return w.templateVersion === rollout.toVersion;
}

/** A rollout is under way (or halted, paused) and not settled: nothing else may restart workloads. */
export function rolloutActive(rollout: Rollout | undefined, target: string, fleetVersion: string): boolean {
  if (!rollout) return target !== fleetVersion;
  if (rollout.toVersion !== target) return true;
  return rollout.state !== "Complete" && rollout.state !== "RolledBack";
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
  const ctx: Ctx = {
    input,
    spec,
    now,
    planned,
    others: input.others ?? [],
    analyse: input.analyse,
    previous: input.rollout,
    events: [],
  };
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
      return halt(ctx, versionPass(ctx), started, `before anything was restarted: ${blockedText(blocked)}`);
    rollout = started;
  }
  return advance(ctx, versionPass(ctx), rollout);
}

/** The rollout as a pass of the step engine: every workload not skipped, onto the target. */
function versionPass(ctx: Ctx): Pass {
  const target = ctx.input.target;
  return {
    version: target,
    title: `Proxy ${target}`,
    doneLabel: `on ${target}`,
    analysedLabel: "upgraded",
    reasons: { blocked: "RolloutBlocked", resumed: "RolloutResumed", stepPassed: "StepPassed" },
    members: ctx.planned.filter((p) => !isSkipped(p)),
    due: (w) => w.templateVersion !== target,
    inFlight: (w) => w.templateVersion === target && !isDoneAt(w, target),
    done: (w) => isDoneAt(w, target),
    restarted: (w) => w.templateVersion === target,
    fail: (r, detail) => fail(ctx, r, detail),
    complete: (r) => complete(ctx, r),
    decide: (r) => decide(ctx, r),
  };
}

/** A new rollout (or one whose target changed): its first step, or Complete when nothing is to restart. */
function start(ctx: Ctx, from: string, startedAt: string): Rollout {
  const { spec, target, now } = ctx.input;
  const pass = versionPass(ctx);
  const eligible = pass.members.map((p) => p.workload);
  const report = pendingSummary(ctx.planned, ctx.others, target);
  const base = { fromVersion: from, toVersion: target, startedAt, ...counts(ctx, pass) };
  if (eligible.length === 0) {
    const message = report ? `no workload to restart; ${report}` : "no meshed workloads";
    return { ...base, step: 0, steps: 0, state: "Complete", message };
  }
  ctx.events.push({
    type: "Normal",
    reason: "RolloutStarted",
    message: `Rolling out proxy ${target} (from ${from}) to ${counted(eligible.length, "workload")}: canary first${report ? `; ${report}` : ""}`,
  });
  return {
    ...base,
    step: 0,
    steps: stepTargets(spec, eligible).length,
    state: "Restarting",
    stepStartedAt: now.toISOString(),
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
    ...decide(ctx, rollout),
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
    message: `Proxy version set back to ${target}: ${counted(decision.restart.length, "workload")} restarted onto it`,
  });
  return { ...decision, rollout: reverted };
}

function complete(ctx: Ctx, rollout: Rollout): RolloutDecision {
  const { target } = ctx.input;
  const c = counts(ctx, versionPass(ctx));
  const report = pendingSummary(ctx.planned, ctx.others, target);
  const all = c.totalWorkloads === 1 ? "the 1 workload" : `all ${c.totalWorkloads} workloads`;
  ctx.events.push({
    type: "Normal",
    reason: "RolloutComplete",
    message: report
      ? `Proxy ${target} runs on ${all} the rollout restarts; ${report}`
      : `Every meshed workload runs proxy ${target}`,
  });
  const message = `${all} on ${target}${report ? `; ${report}` : ""}`;
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

function fail(ctx: Ctx, rollout: Rollout, detail: string): RolloutDecision {
  if (ctx.spec.upgrade.onFailure === "Pause") {
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
    message: `Proxy ${rollout.toVersion} rolled back to ${rollout.fromVersion} on ${counted(decision.restart.length, "workload")}: ${detail}`,
  });
  return decision;
}
