// A proxy rollout as a pure decision. Steps are a canary cohort then cumulative waves over the
// meshed workloads in a stable order; in each step the workloads of the step are restarted onto
// the new version (at most maxConcurrentRestarts in flight), then the step is analysed for the
// configured interval; a failed analysis pauses or rolls the upgraded workloads back. Every
// decision is a function of the Mesh status and the cluster, so a restarted operator resumes
// where its predecessor stopped, and a workload whose template already asks for the version is
// never restarted again.
import type { MeshSpec, MeshStatus } from "../../api/index.ts";
import { parseDuration } from "../../api/index.ts";
import { isDoneAt, type WorkloadView } from "./workloads.ts";

export type Rollout = NonNullable<MeshStatus["rollout"]>;

export type AnalysisVerdict = { healthy: true; detail: string } | { healthy: false; detail: string };

export interface RolloutInput {
  spec: MeshSpec;
  /** The fleet's version outside a rollout (status.proxies.version), when known. */
  fleetVersion: string | undefined;
  target: string;
  rollout: Rollout | undefined;
  workloads: WorkloadView[];
  /** Health of the upgraded workloads (pods, and Prometheus figures when configured). */
  analyse: (upgraded: WorkloadView[], baseline: WorkloadView[], version: string) => AnalysisVerdict;
  /** Workloads that may not be disrupted now (a PodDisruptionBudget allows no disruption). */
  blocked: (w: WorkloadView) => boolean;
  now: Date;
}

export interface RolloutDecision {
  rollout: Rollout | undefined;
  fleetVersion: string;
  /** Workloads to restart onto a version (one template patch each). */
  restart: Array<{ workload: WorkloadView; version: string }>;
  events: Array<{ type: "Normal" | "Warning"; reason: string; message: string }>;
  requeueAfterMs?: number;
  /** A failure to surface as Degraded. */
  failure?: { reason: string; message: string };
}

/** How many workloads steps 0..n cover: the canary, then each wave's cumulative percentage. */
export function stepTargets(spec: MeshSpec, workloads: WorkloadView[]): WorkloadView[][] {
  const n = workloads.length;
  const canarySelector = spec.upgrade.canary.selector?.matchLabels;
  const canary = canarySelector
    ? workloads.filter((w) => Object.entries(canarySelector).every(([k, v]) => w.labels[k] === v))
    : workloads.slice(0, Math.max(1, Math.ceil((n * spec.upgrade.canary.percent) / 100)));
  const rest = workloads.filter((w) => !canary.includes(w));
  const ordered = [...canary, ...rest];
  const waves = spec.upgrade.strategy === "AllAtOnce" ? [100] : spec.upgrade.waves;
  const targets = [canary];
  for (const pct of waves)
    targets.push(ordered.slice(0, Math.max(canary.length, Math.ceil((n * pct) / 100))));
  return targets;
}

export function planRollout(input: RolloutInput): RolloutDecision {
  const { spec, target, now } = input;
  const fleet = input.fleetVersion ?? target;
  let rollout = input.rollout;
  const events: RolloutDecision["events"] = [];
  if (rollout?.toVersion === target) {
    if (rollout.state === "Complete") return { rollout, fleetVersion: target, restart: [], events };
    if (rollout.state === "RolledBack")
      return rollBack(input, rollout, "RolledBack", rollout.message ?? "rolled back", events, false);
    if (rollout.state === "Halted") {
      if (!spec.upgrade.paused) {
        return {
          rollout,
          fleetVersion: rollout.fromVersion,
          restart: [],
          events,
          failure: { reason: "RolloutHalted", message: rollout.message ?? "halted" },
        };
      }
      rollout = {
        ...rollout,
        state: "Paused",
        message: "paused by spec.upgrade.paused; set it to false to resume",
      };
    }
  } else {
    const from = rollout && rollout.state !== "Complete" ? rollout.fromVersion : fleet;
    if (from === target) {
      if (!rollout || rollout.state === "Complete")
        return { rollout, fleetVersion: target, restart: [], events };
      const restart = input.workloads
        .filter((w) => w.templateVersion !== undefined && w.templateVersion !== target)
        .map((workload) => ({ workload, version: target }));
      events.push({
        type: "Normal",
        reason: "RolloutReverted",
        message: `Proxy version set back to ${target}: ${restart.length} workloads restarted onto it`,
      });
      return {
        rollout: { ...rollout, toVersion: target, state: "Complete", message: `reverted to ${target}` },
        fleetVersion: target,
        restart,
        events,
      };
    }
    if (input.workloads.length === 0) {
      // Nothing is meshed yet: new pods simply get the new version.
      const done: Rollout = {
        fromVersion: from,
        toVersion: target,
        step: 0,
        steps: 0,
        state: "Complete",
        message: "no meshed workloads",
      };
      return { rollout: done, fleetVersion: target, restart: [], events };
    }
    rollout = {
      fromVersion: from,
      toVersion: target,
      step: 0,
      steps: stepTargets(spec, input.workloads).length,
      state: "Restarting",
      stepStartedAt: now.toISOString(),
    };
    events.push({
      type: "Normal",
      reason: "RolloutStarted",
      message: `Rolling out proxy ${target} (from ${from}): canary first`,
    });
  }
  const targets = stepTargets(spec, input.workloads);
  const step = Math.min(rollout.step, targets.length - 1);
  const inStep = targets[step] ?? [];
  const upgraded = input.workloads.filter((w) => w.templateVersion === target);
  const counts = {
    updatedWorkloads: input.workloads.filter((w) => isDoneAt(w, target)).length,
    totalWorkloads: input.workloads.length,
  };
  if (spec.upgrade.paused) {
    const message = "paused by spec.upgrade.paused; set it to false to resume";
    return {
      rollout: { ...rollout, ...counts, state: "Paused", message },
      fleetVersion: rollout.fromVersion,
      restart: [],
      events,
    };
  }
  if (rollout.state === "Paused") {
    events.push({ type: "Normal", reason: "RolloutResumed", message: `Proxy ${target} rollout resumed` });
    rollout = { ...rollout, state: "Restarting", stepStartedAt: now.toISOString(), message: undefined };
  }
  const baseline = input.workloads.filter((w) => w.templateVersion !== target);
  const verdict =
    upgraded.length > 0
      ? input.analyse(upgraded, baseline, target)
      : { healthy: true as const, detail: "nothing upgraded yet" };
  if (!verdict.healthy)
    return fail(input, rollout, events, `step ${step} (${stepName(step)}): ${verdict.detail}`);
  const pending = inStep.filter((w) => w.templateVersion !== target);
  const inFlight = inStep.filter((w) => w.templateVersion === target && !isDoneAt(w, target));
  if (pending.length > 0 || inFlight.length > 0) {
    const since = Date.parse(rollout.stepStartedAt ?? now.toISOString());
    if (now.getTime() - since > parseDuration(spec.upgrade.stepDeadline)) {
      return fail(
        input,
        rollout,
        events,
        `step ${step} (${stepName(step)}): ${inFlight.length} workloads not ready after ${spec.upgrade.stepDeadline}`,
      );
    }
    const room = Math.max(0, spec.upgrade.maxConcurrentRestarts - inFlight.length);
    const restart = pending
      .filter((w) => !input.blocked(w))
      .slice(0, room)
      .map((workload) => ({ workload, version: target }));
    const message = `${stepName(step)}: ${inStep.length - pending.length - inFlight.length}/${inStep.length} workloads on ${target}`;
    return {
      rollout: { ...rollout, ...counts, step, state: "Restarting", message },
      fleetVersion: rollout.fromVersion,
      restart,
      events,
      requeueAfterMs: 2000,
    };
  }
  const analysisSince =
    rollout.state === "Analysing" && rollout.analysisSince ? rollout.analysisSince : now.toISOString();
  const waitMs = parseDuration(spec.upgrade.analysis.interval) - (now.getTime() - Date.parse(analysisSince));
  if (waitMs > 0) {
    const message = `${stepName(step)}: analysing ${inStep.length} upgraded workloads (${verdict.detail})`;
    return {
      rollout: { ...rollout, ...counts, step, state: "Analysing", analysisSince, message },
      fleetVersion: rollout.fromVersion,
      restart: [],
      events,
      requeueAfterMs: Math.min(waitMs, 5000),
    };
  }
  events.push({
    type: "Normal",
    reason: "StepPassed",
    message: `Proxy ${target}: ${stepName(step)} passed analysis (${verdict.detail})`,
  });
  if (step + 1 >= targets.length) {
    events.push({
      type: "Normal",
      reason: "RolloutComplete",
      message: `Every meshed workload runs proxy ${target}`,
    });
    return {
      rollout: {
        ...rollout,
        ...counts,
        step,
        state: "Complete",
        analysisSince: undefined,
        message: `all ${counts.totalWorkloads} workloads on ${target}`,
      },
      fleetVersion: target,
      restart: [],
      events,
    };
  }
  const next: Rollout = {
    ...rollout,
    ...counts,
    step: step + 1,
    state: "Restarting",
    stepStartedAt: now.toISOString(),
    analysisSince: undefined,
    message: `${stepName(step + 1)} starting`,
  };
  return { rollout: next, fleetVersion: rollout.fromVersion, restart: [], events, requeueAfterMs: 0 };
}

export function stepName(step: number): string {
  return step === 0 ? "canary" : `wave ${step}`;
}

function fail(
  input: RolloutInput,
  rollout: Rollout,
  events: RolloutDecision["events"],
  detail: string,
): RolloutDecision {
  if (input.spec.upgrade.onFailure === "Pause") {
    events.push({
      type: "Warning",
      reason: "RolloutHalted",
      message: `Proxy ${rollout.toVersion} halted: ${detail}`,
    });
    return {
      rollout: { ...rollout, state: "Halted", message: detail },
      fleetVersion: rollout.fromVersion,
      restart: [],
      events,
      failure: { reason: "RolloutFailed", message: detail },
    };
  }
  return rollBack(input, rollout, "RolledBack", detail, events);
}

/** Puts every workload that asks for another version back on the rollout's starting version. */
function rollBack(
  input: RolloutInput,
  rollout: Rollout,
  reason: string,
  detail: string,
  events: RolloutDecision["events"],
  announce = true,
): RolloutDecision {
  const back = rollout.fromVersion;
  const restart = input.workloads
    .filter((w) => w.templateVersion !== undefined && w.templateVersion !== back)
    .map((workload) => ({ workload, version: back }));
  if (announce)
    events.push({
      type: "Warning",
      reason,
      message: `Proxy ${rollout.toVersion} rolled back to ${back} on ${restart.length} workloads: ${detail}`,
    });
  return {
    rollout: { ...rollout, state: "RolledBack", message: detail },
    fleetVersion: back,
    restart,
    events,
    failure: {
      reason: "RolloutFailed",
      message: `proxy ${rollout.toVersion} rolled back to ${back}: ${detail}`,
    },
  };
}
