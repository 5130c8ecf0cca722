// A data-plane repair as a pure decision: the workloads that own pods without a proxy, or with a
// proxy outside the skew policy (data-plane.ts), are restarted onto the fleet's version through
// the same canaried, health-gated, concurrency-limited steps as a proxy rollout
// (rollout-steps.ts), with the same per-workload decisions (workload-plan.ts: paused, budgets...).
// One repair pass at a time, recorded in status.repair; never beside a proxy rollout (a rollout
// under way makes the repair wait, and supersedes one in progress: it restarts every workload
// anyway). Each workload is restarted at most once per pass, also across operator restarts (its
// template's restarted-at is after the pass began). A workload whose pods came up without a
// proxy (or out of skew) after Trellis restarted it is not restarted again: restarting cannot
// help, and it is reported with the reason. Nothing restarts while the injector does not serve,
// nor for a gap younger than GAP_SETTLE_MS (the pods would come back without a proxy). Job, CronJob and bare pods are never restarted,
// only reported. A failed step halts the repair; nothing is undone (a rollback would remove
// proxies). spec.injection.repair: Report counts and warns only.
import { counted, type MeshSpec, parseRevision } from "../../api/index.ts";
import { proxySkew } from "../mesh/version-skew.ts";
import { changedBy } from "./rollout-plan.ts";
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

export interface RepairInput {
  spec: MeshSpec;
  /** The version new pods get: what a repair restarts onto. */
  fleetVersion: string;
  controlPlaneVersion: string | undefined;
  /** status.repair as persisted. */
  repair: Rollout | undefined;
  /** A proxy rollout under way (or halted, paused): the repair waits for it. */
  rolloutActive: boolean;
  rolloutTarget: string;
  /** Workloads with their gaps (inventory's `gaps`), and those the pass already restarted. */
  workloads: WorkloadView[];
  /** Gap pods no workload owns (Job, CronJob, bare pods): reported, never restarted. */
  gapOthers: OtherPods[];
  budgets: DisruptionBudgetView[];
  /** The injector serves: without it a restart cannot add a proxy. */
  injectorReady: boolean;
  analyse: Analyse;
  now: Date;
}

interface Ctx extends StepContext {
  input: RepairInput;
}

/**
 * A gap pod this young does not start a restart: it may be one the injector is failing for right
 * now (down, restarting), and a restart would bring the pods back without a proxy again.
 */
export const GAP_SETTLE_MS = 15_000;
/** How often a repair waiting for the injector looks again (a probe, or the Mesh's component status). */
const INJECTOR_RECHECK_MS = 5_000;

const gapOf = (w: WorkloadView) => (w.gaps?.missing ?? 0) + (w.gaps?.outOfSkew ?? 0);
const settledGap = (w: WorkloadView, now: Date) =>
  gapOf(w) > 0 && (w.gaps?.newestCreatedAt ?? 0) <= now.getTime() - GAP_SETTLE_MS;
const settled = (r: Rollout | undefined) => !r || r.state === "Complete" || r.state === "Superseded";

/**
 * A repair restarted it (the last pass began before its restart), and pods without a proxy (or
 * out of skew) were created after that restart: restarting it again would not help. A restart by
 * a proxy rollout does not count: the injector may have been down then, and a repair is the fix.
 */
function restartDidNotHelp(w: WorkloadView, lastRepair: Rollout | undefined): boolean {
  if (!w.restartedAt || !w.gaps || !lastRepair?.startedAt) return false;
  if (w.restartedAt < lastRepair.startedAt) return false;
  return w.gaps.newestCreatedAt > Date.parse(w.restartedAt);
}

/**
 * What the repair does with each workload that has a gap: the workload plan's decision, except
 * that a workload a restart did not help, or whose only gap is a skew the fleet's own version
 * has too, is skipped (reported) instead.
 */
export function planRepairWorkloads(input: RepairInput): PlannedWorkload[] {
  const { fleetVersion: fleet, controlPlaneVersion: cp, repair } = input;
  const mine = (w: WorkloadView) => repair !== undefined && !settled(repair) && changedBy(repair, w);
  const planned = planWorkloads({
    workloads: input.workloads.filter((w) => gapOf(w) > 0 || mine(w)),
    budgets: input.budgets,
    target: fleet,
    onBlocked: input.spec.upgrade.onBlocked,
    now: input.now,
  });
  const fleetInSkew = !cp || proxySkew(cp, parseRevision(fleet).version) === undefined;
  for (const p of planned) {
    const w = p.workload;
    if (mine(w) || p.action.action === "Skip") continue;
    if (restartDidNotHelp(w, repair)) {
      const why = input.injectorReady ? "" : "the injector is not available; ";
      p.action = {
        action: "Skip",
        reason: "RestartDidNotHelp",
        message: `${why}its pods came up without a proxy (or out of skew) after Trellis restarted it; see the injector's admission warnings`,
      };
    } else if ((w.gaps?.missing ?? 0) === 0 && !fleetInSkew)
      p.action = {
        action: "Skip",
        reason: "FleetOutOfSkew",
        message: `the fleet's proxy version ${fleet} is itself outside the skew policy of control plane ${cp}: roll the proxies out`,
      };
  }
  return planned;
}

export function planRepair(input: RepairInput): RolloutDecision {
  const { spec, now } = input;
  const planned = planRepairWorkloads(input);
  const ctx: Ctx = {
    input,
    spec,
    now,
    planned,
    others: input.gapOthers,
    analyse: input.analyse,
    previous: input.repair,
    events: [],
  };
  let repair = input.repair;
  if (spec.injection.repair === "Report" || input.rolloutActive) {
    if (settled(repair) || !repair) return decide(ctx, repair);
    const why =
      spec.injection.repair === "Report"
        ? "stopped: spec.injection.repair is Report"
        : `superseded by the proxy rollout to ${input.rolloutTarget}, which restarts every meshed workload`;
    ctx.events.push({ type: "Normal", reason: "RepairSuperseded", message: `Data-plane repair ${why}` });
    return decide(ctx, { ...repair, state: "Superseded", message: why });
  }
  if (!input.injectorReady) {
    // A restart now would bring the pods back without a proxy: wait for the injector.
    const waiting =
      settled(repair) || !repair ? repair : { ...repair, message: "waiting for the injector to serve again" };
    return planned.length > 0
      ? { ...decide(ctx, waiting), requeueAfterMs: INJECTOR_RECHECK_MS }
      : decide(ctx, waiting);
  }
  if (settled(repair)) {
    const started = start(ctx);
    if (!started) return settleLater(ctx, repair);
    const blocked = planned.filter((p) => p.action.action === "Blocked");
    if (blocked.length > 0 && spec.upgrade.onBlocked === "Fail")
      return halt(
        ctx,
        repairPass(ctx, started),
        started,
        `before anything was restarted: ${blockedText(blocked)}`,
      );
    repair = started;
  } else if (repair?.state === "Halted") {
    if (!spec.upgrade.paused) return decide(ctx, repair);
    repair = { ...repair, state: "Paused" };
  }
  return advance(ctx, repairPass(ctx, repair as Rollout), repair as Rollout);
}

function repairPass(ctx: Ctx, repair: Rollout): Pass {
  const version = ctx.input.fleetVersion;
  const mine = (w: WorkloadView) => changedBy(repair, w);
  return {
    version,
    title: "Data-plane repair",
    doneLabel: "repaired",
    analysedLabel: "repaired",
    reasons: { blocked: "RepairBlocked", resumed: "RepairResumed", stepPassed: "RepairStepPassed" },
    members: ctx.planned.filter((p) => p.action.action !== "Skip"),
    due: (w) => !mine(w) && settledGap(w, ctx.now),
    inFlight: (w) => mine(w) && !isDoneAt(w, version),
    done: (w) => mine(w) && isDoneAt(w, version),
    restarted: mine,
    fail: (r, detail) => {
      ctx.events.push({
        type: "Warning",
        reason: "RepairHalted",
        message: `Data-plane repair halted: ${detail}`,
      });
      return {
        ...decide(ctx, { ...r, state: "Halted", message: `${detail}; nothing undone` }),
        failure: { reason: "RepairFailed", message: detail },
      };
    },
    complete: (r) => complete(ctx, r),
    decide: (r) => decide(ctx, r),
  };
}

/**
 * A new pass when some workload is due: the workloads to restart, canary first. While workloads
 * a previous pass restarted still have pods without a proxy, the new pass continues that repair
 * (same startedAt): they stay restarted once, and are not restarted again.
 */
function start(ctx: Ctx): Rollout | undefined {
  const { input } = ctx;
  const now = input.now.toISOString();
  const previous = input.repair;
  const unhelped = previous?.startedAt && ctx.planned.some((p) => restartDidNotHelp(p.workload, previous));
  const draft: Rollout = {
    fromVersion: input.fleetVersion,
    toVersion: input.fleetVersion,
    startedAt: unhelped ? previous.startedAt : now,
    step: 0,
    steps: 0,
    state: "Restarting",
    stepStartedAt: now,
  };
  const pass = repairPass(ctx, draft);
  const due = pass.members.filter((p) => pass.due(p.workload));
  if (due.length === 0) return undefined;
  const missing = due.reduce((n, p) => n + (p.workload.gaps?.missing ?? 0), 0);
  const skew = due.reduce((n, p) => n + (p.workload.gaps?.outOfSkew ?? 0), 0);
  const report = pendingSummary(ctx.planned, ctx.others, input.fleetVersion);
  ctx.events.push({
    type: "Normal",
    reason: "RepairStarted",
    message: `Repairing the data plane: restarting ${counted(due.length, "workload")} (${counted(missing, "pod")} without a proxy, ${skew} out of skew) onto proxy ${input.fleetVersion}, canary first${report ? `; ${report}` : ""}`,
  });
  const steps = stepTargets(
    input.spec,
    pass.members.map((p) => p.workload),
  ).length;
  return { ...draft, steps, ...counts(ctx, pass) };
}

function complete(ctx: Ctx, repair: Rollout): RolloutDecision {
  const pass = repairPass(ctx, repair);
  const c = counts(ctx, pass);
  const left = pass.members.filter((p) => gapOf(p.workload) > 0).map((p) => p.workload.key);
  const report = [
    left.length > 0 ? `still without a proxy after their restart: ${left.slice(0, 3).join(", ")}` : "",
    pendingSummary(ctx.planned, ctx.others, pass.version),
  ]
    .filter(Boolean)
    .join("; ");
  const message = `restarted ${counted(c.totalWorkloads, "workload")}${report ? `; ${report}` : ""}`;
  ctx.events.push({
    type: left.length > 0 ? "Warning" : "Normal",
    reason: "RepairComplete",
    message: `Data-plane repair ${message}`,
  });
  return decide(ctx, { ...repair, ...c, state: "Complete", analysisSince: undefined, message });
}

/** Nothing due now; if a gap is only too young yet, look again when it has settled. */
function settleLater(ctx: Ctx, repair: Rollout | undefined): RolloutDecision {
  const now = ctx.now.getTime();
  const young = ctx.planned
    .filter((p) => p.action.action !== "Skip" && gapOf(p.workload) > 0)
    .map((p) => (p.workload.gaps?.newestCreatedAt ?? 0) + GAP_SETTLE_MS - now)
    .filter((ms) => ms > 0);
  const decision = decide(ctx, repair);
  return young.length > 0 ? { ...decision, requeueAfterMs: Math.min(...young) + 100 } : decision;
}

function decide(ctx: Ctx, repair: Rollout | undefined): RolloutDecision {
  return {
    rollout: repair,
    fleetVersion: ctx.input.fleetVersion,
    restart: [],
    events: ctx.events,
    workloads: ctx.planned,
  };
}
