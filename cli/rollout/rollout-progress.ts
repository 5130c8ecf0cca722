// A proxy rollout's progress as a person follows it: the step and state from status.rollout,
// and per step the workloads done (the operator's per-workload plan, steps and isDoneAt over its
// inventory), the analysis countdown, the gate's last figures (the operator's own message) and
// what it holds back (status.rollout.held). Pure; golden-tested.
import { type Mesh, parseDuration, validateMeshSpec } from "../../api/index.ts";
import { stepName, stepTargets } from "../../operator/rollout/rollout-plan.ts";
import { planWorkloads } from "../../operator/rollout/workload-plan.ts";
import { isDoneAt } from "../../operator/rollout/workloads.ts";
import type { Fleet } from "../upgrade/upgrade-plan.ts";

export interface StepProgress {
  name: string;
  workloads: number;
  done: number;
  state: string;
}

export interface RolloutProgress {
  mesh: string;
  active: boolean;
  from?: string;
  to?: string;
  state?: string;
  step?: string;
  stepIndex?: number;
  steps: StepProgress[];
  /** Pods on the target version / injected pods (status.proxies). */
  proxies: string;
  /** Seconds left of the current step's analysis, or of its restart deadline. */
  analysisLeftSeconds?: number;
  restartDeadlineLeftSeconds?: number;
  /** The operator's last message: the gate's figures while analysing, the failure when it failed. */
  message?: string;
  /** What the operator says it holds back (status.rollout.held) and how many in all. */
  held?: Array<{ workload: string; reason: string; message: string }>;
  blockedWorkloads?: number;
  skippedWorkloads?: number;
  pendingPods?: number;
  summary: string;
  /** spec.upgrade.approval Manual: the plan waiting for a person (status.upgradePlan). */
  awaitingApproval?: { id: string; summary: string };
  /** A data-plane repair under way, paused or halted (status.repair), in one line. */
  repair?: string;
}

/** The rollout is over and the watch can stop. */
export function isSettled(p: RolloutProgress): boolean {
  return !p.active || ["Complete", "RolledBack", "Halted"].includes(p.state ?? "");
}

export function rolloutProgress(mesh: Mesh, fleet: Fleet, now: Date): RolloutProgress {
  const progress = currentRollout(mesh, fleet, now);
  const plan = mesh.status?.upgradePlan;
  if (plan?.state === "AwaitingApproval") progress.awaitingApproval = { id: plan.id, summary: plan.summary };
  const repair = repairLine(mesh.status?.repair);
  if (repair) progress.repair = repair;
  return progress;
}

/** The data-plane repair (issue 21) while it restarts, analyses, or waits for a person. */
function repairLine(r: NonNullable<Mesh["status"]>["repair"]): string | undefined {
  if (!r || !["Restarting", "Analysing", "Paused", "Halted"].includes(r.state)) return undefined;
  const where = `${stepName(r.step)} (step ${r.step + 1} of ${r.steps}) ${r.state.toLowerCase()}`;
  const done = `${r.updatedWorkloads ?? 0}/${r.totalWorkloads ?? 0} workloads repaired`;
  return `data-plane repair onto ${r.toVersion}: ${where}, ${done}${r.message ? `: ${r.message}` : ""}`;
}

function currentRollout(mesh: Mesh, fleet: Fleet, now: Date): RolloutProgress {
  const name = mesh.metadata?.name ?? "";
  const r = mesh.status?.rollout;
  const proxies = mesh.status?.proxies?.summary ?? "0/0";
  const checked = validateMeshSpec(mesh.spec);
  if (!r || !checked.ok) {
    const v = mesh.status?.proxies?.version ?? "?";
    return {
      mesh: name,
      active: false,
      steps: [],
      proxies,
      summary: `no proxy rollout: proxies on ${v} (${proxies})`,
    };
  }
  const spec = checked.value;
  // The steps as planRollout forms them: over the workloads its per-workload plan restarts.
  const planned = planWorkloads({
    workloads: fleet.inventory.workloads,
    budgets: fleet.budgets,
    target: r.state === "RolledBack" ? r.fromVersion : r.toVersion,
    onBlocked: spec.upgrade.onBlocked,
    now,
  });
  const eligible = planned.filter((p) => p.action.action !== "Skip").map((p) => p.workload);
  const targets = r.steps === 0 || eligible.length === 0 ? [] : stepTargets(spec, eligible);
  const counted = new Set<string>();
  const steps = targets.map((cohort, i): StepProgress => {
    const fresh = cohort.filter((w) => !counted.has(w.key));
    for (const w of fresh) counted.add(w.key);
    const done = fresh.filter((w) => isDoneAt(w, r.toVersion)).length;
    return { name: stepName(i), workloads: fresh.length, done, state: stepState(i, r.step, r.state) };
  });
  const since = (t: string | undefined) => (t ? (now.getTime() - Date.parse(t)) / 1000 : 0);
  const progress: RolloutProgress = {
    mesh: name,
    active: r.state !== "Complete",
    from: r.fromVersion,
    to: r.toVersion,
    state: r.state,
    step: stepName(r.step),
    stepIndex: r.step,
    steps,
    proxies,
    summary: summary(r.state, r.step, r.steps, r.fromVersion, r.toVersion),
    held: r.held ?? [],
    blockedWorkloads: r.blockedWorkloads ?? 0,
    skippedWorkloads: r.skippedWorkloads ?? 0,
    pendingPods: r.pendingPods ?? 0,
    ...(r.message ? { message: r.message } : {}),
  };
  if (r.state === "Analysing")
    progress.analysisLeftSeconds = Math.max(
      0,
      Math.round(parseDuration(spec.upgrade.analysis.interval) / 1000 - since(r.analysisSince)),
    );
  if (r.state === "Restarting")
    progress.restartDeadlineLeftSeconds = Math.max(
      0,
      Math.round(parseDuration(spec.upgrade.stepDeadline) / 1000 - since(r.stepStartedAt)),
    );
  return progress;
}

function stepState(i: number, current: number, state: string): string {
  if (state === "Complete") return "passed";
  if (i < current) return "passed";
  if (i > current) return "waiting";
  return state.toLowerCase();
}

function summary(state: string, step: number, steps: number, from: string, to: string): string {
  const where = `${stepName(step)} (step ${step + 1} of ${steps})`;
  switch (state) {
    case "Complete":
      return `proxy rollout ${from} → ${to} complete`;
    case "RolledBack":
      return `proxy rollout ${from} → ${to} rolled back in ${where}`;
    case "Halted":
      return `proxy rollout ${from} → ${to} halted in ${where}`;
    default:
      return `proxy rollout ${from} → ${to}: ${where} ${state.toLowerCase()}`;
  }
}
