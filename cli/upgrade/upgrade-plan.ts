// `upgrade plan` as a pure function: what the operator would do if the Mesh's spec became
// `desired`, computed by the operator's own functions over what the cluster shows now —
// planControlPlane and its skew policy for the control plane, inventory and stepTargets for the
// proxy rollout's steps — never a second copy of their rules. Adds only what a person needs
// before approving: the workloads of each step, the gate of each step, what is left out and why,
// and an estimate of the duration.
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import {
  counted,
  fleetProxyVersion,
  fleetRevision,
  type Mesh,
  type MeshSpec,
  parseDuration,
  targetProxyVersion,
  targetRevision,
} from "../../api/index.ts";
import { type ControlPlaneState, planControlPlane } from "../../operator/mesh/control-plane-plan.ts";
import { revisionName } from "../../operator/mesh/revision.ts";
import { proxySkew } from "../../operator/mesh/version-skew.ts";
import { type PodView, uninjectedPodView } from "../../operator/resources.ts";
import { MAX_RESTARTS } from "../../operator/rollout/analysis.ts";
import { meantToBeMeshed, type NamespaceView } from "../../operator/rollout/data-plane.ts";
import { stepName } from "../../operator/rollout/rollout-plan.ts";
import { otherEntry, othersOffVersion } from "../../operator/rollout/rollout-report.ts";
import { pendingChange, rolloutSteps, upgradePlanStatus } from "../../operator/rollout/upgrade-approval.ts";
import {
  type DisruptionBudgetView,
  type PlannedWorkload as PlannedRestart,
  planWorkloads,
} from "../../operator/rollout/workload-plan.ts";
import {
  type Inventory,
  type OtherPods,
  ownerWorkload,
  type WorkloadView,
} from "../../operator/rollout/workloads.ts";
import { injectionDecision } from "../injection-decision.ts";

export interface PlannedWorkload {
  kind: string;
  namespace: string;
  name: string;
  pods: number;
  /** Held by a PodDisruptionBudget now: waits (onBlocked Wait) or fails its step (Fail). */
  blocked?: string;
}

export interface PlannedStep {
  name: string;
  /** Share of the workloads upgraded at the end of the step, as the step's cohort really is. */
  percent: number;
  /** The share the spec asks for (canary.percent, or the wave's); rounding up may take more. */
  configuredPercent: number | undefined;
  workloads: PlannedWorkload[];
  pods: number;
  gate: string;
  estimateSeconds: number;
}

export interface LeftOut {
  namespace: string;
  name: string;
  kind: string;
  reason: string;
  /** The plan's CamelCase reason (Paused, OptedOut, RunsToCompletion, ...), where it has one. */
  code?: string;
}

export interface UpgradePlan {
  mesh: string;
  /** False when the operator would refuse the change (exit status 1). */
  allowed: boolean;
  summary: string;
  controlPlane: {
    from: string | undefined;
    to: string;
    change: boolean;
    verdict: string;
    reason: string;
    steps: string[];
  };
  proxies: {
    from: string;
    to: string;
    change: boolean;
    warnings: string[];
    maxConcurrentRestarts: number;
    stepDeadline: string;
    onFailure: string;
    onBlocked: string;
    steps: PlannedStep[];
    /** Workloads the plan skips, with its reason (paused, opted out, a budget with onBlocked Skip, ...). */
    skipped: LeftOut[];
    /** Pods a rollout does not restart (Jobs, bare pods): they keep their proxy until they end or are re-created. */
    pending: LeftOut[];
    /** Pods of meshed namespaces that get no proxy at all. */
    notMeshed: LeftOut[];
  };
  estimate: { seconds: number; podStartSeconds: number; basis: string };
  /** spec.upgrade.approval: with Manual, the id the operator will publish and wait for. */
  approval: { mode: string; planId?: string; summary?: string };
}

/** The fleet as the rollout controller sees it: inventory() and the PodDisruptionBudgets. */
export interface Fleet {
  inventory: Inventory;
  budgets: DisruptionBudgetView[];
}

export interface PlanPreviewInput {
  mesh: Mesh;
  desired: MeshSpec;
  /** The workloads, the pods no workload owns and the budgets, as the rollout controller sees them. */
  fleet: Fleet;
  /** Pods of meshed namespaces without a proxy, and the namespaces (labels and annotations). */
  otherPods: V1Pod[];
  namespaces: Map<string, NamespaceView>;
  /** Median time from a meshed pod's creation to Ready, measured on the cluster. */
  podStart: { seconds: number; samples: number } | undefined;
  now: Date;
}

/** Pod start time assumed when the cluster shows none to measure. */
export const ASSUMED_POD_START_SECONDS = 10;

export function planUpgrade(input: PlanPreviewInput): UpgradePlan {
  const { mesh, desired, now } = input;
  const name = mesh.metadata?.name ?? "";
  const cp = controlPlaneSteps(mesh, desired, now);
  const podStartSeconds = input.podStart?.seconds ?? ASSUMED_POD_START_SECONDS;
  const from = fleetProxyVersion(mesh);
  const to = targetProxyVersion(desired);
  // Revisions (api/data-plane-revision.ts): a capture-mode switch restarts workloads as a new version does.
  const toRevision = targetRevision(desired, mesh.status);
  const proxyChange = fleetRevision(mesh) !== toRevision;
  const planned = planWorkloads({
    workloads: input.fleet.inventory.workloads,
    budgets: input.fleet.budgets,
    target: toRevision,
    onBlocked: desired.upgrade.onBlocked,
    now,
  });
  const steps = proxyChange ? proxySteps(desired, planned, podStartSeconds) : [];
  const warnings: string[] = [];
  const cpVersion = cp.change && cp.allowed ? desired.version : (mesh.status?.version ?? desired.version);
  const skew = proxyChange ? proxySkew(cpVersion, to) : undefined;
  if (skew) warnings.push(`${skew}: kubectl trellis check --proxies will report these proxies`);
  const rollout = mesh.status?.rollout;
  if (
    proxyChange &&
    rollout &&
    !["Complete", "RolledBack"].includes(rollout.state) &&
    rollout.toVersion !== to
  )
    warnings.push(
      `replaces the rollout to ${rollout.toVersion} in progress (${stepName(rollout.step)} ${rollout.state.toLowerCase()})`,
    );
  if (proxyChange && steps.length === 0)
    warnings.push("no meshed workloads: new pods simply get the new version");
  const restartSeconds = steps.reduce((s, x) => s + x.estimateSeconds, 0);
  const seconds = cp.seconds + restartSeconds;
  const basis = input.podStart
    ? `pods start in ${input.podStart.seconds.toFixed(1)}s here (median of ${counted(input.podStart.samples, "meshed pod")})`
    : `no meshed pod to measure: ${ASSUMED_POD_START_SECONDS}s per pod start assumed`;
  const allowed = cp.allowed;
  return {
    mesh: name,
    allowed,
    summary: summarise(cp, from, to, steps, allowed, seconds),
    controlPlane: {
      from: mesh.status?.version,
      to: desired.version,
      change: cp.change,
      verdict: cp.verdict,
      reason: cp.reason,
      steps: cp.steps,
    },
    proxies: {
      from,
      to,
      change: proxyChange,
      warnings,
      maxConcurrentRestarts: desired.upgrade.maxConcurrentRestarts,
      stepDeadline: desired.upgrade.stepDeadline,
      onFailure: desired.upgrade.onFailure,
      onBlocked: desired.upgrade.onBlocked,
      steps,
      skipped: proxyChange ? skippedWorkloads(planned) : [],
      pending: proxyChange ? pendingPods(input.fleet.inventory.others, to) : [],
      notMeshed: notMeshed(input),
    },
    estimate: { seconds: Math.round(seconds), podStartSeconds, basis },
    approval: approvalOf(input, planned),
  };
}

function summarise(
  cp: ReturnType<typeof controlPlaneSteps>,
  from: string,
  to: string,
  steps: PlannedStep[],
  allowed: boolean,
  seconds: number,
): string {
  if (!allowed) return `${cp.reason}: ${cp.verdict}`;
  const parts: string[] = [];
  if (cp.change) parts.push(`control plane → ${cp.to}`);
  if (from !== to) {
    const workloads = steps.reduce((n, s) => n + s.workloads.length, 0);
    parts.push(
      `proxies ${from} → ${to}: ${counted(workloads, "workload")} in ${counted(steps.length, "step")}`,
    );
  }
  if (parts.length === 0) return "nothing to do";
  return `${parts.join("; ")}; about ${roughDuration(seconds)}`;
}

export function roughDuration(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

/** The control-plane part, from planControlPlane with a candidate that is not healthy yet. */
function controlPlaneSteps(mesh: Mesh, desired: MeshSpec, now: Date) {
  const state: ControlPlaneState = mesh.status?.controlPlane ?? {};
  const running = state.version;
  const to = desired.version;
  const plan = planControlPlane({
    spec: desired,
    state,
    health: () => ({ healthy: false, detail: "not deployed yet" }),
    now,
  });
  const change = running !== undefined && running !== to;
  const deadline = desired.upgrade.controlPlaneDeadline;
  if (!change)
    return {
      change,
      allowed: true,
      to,
      verdict: "no change",
      reason: "Unchanged",
      steps: [] as string[],
      seconds: 0,
    };
  if (plan.phase === "UpgradeBlocked" || plan.phase === "RolledBack")
    return { change, allowed: false, to, verdict: plan.message, reason: plan.reason, steps: [], seconds: 0 };
  const [from, next] = [revisionName(running), revisionName(to)];
  const steps =
    plan.versions.length > 1
      ? [
          `deploy revision ${next} beside ${from} (Services and the injector stay on ${from})`,
          `wait until every component of ${next} is available (deadline ${deadline}; past it ${next} is deleted and ${running} keeps serving)`,
          `switch the Services and the injector to ${next}, then delete ${from}`,
        ]
      : [`replace revision ${from} with ${next} in place (strategy AllAtOnce; deadline ${deadline})`];
  const verdict = desired.upgrade.force ? "allowed (spec.upgrade.force)" : "allowed by the skew policy";
  return { change, allowed: true, to, verdict, reason: "Allowed", steps, seconds: 30 };
}

/** How long a workload's own rolling update of `pods` takes, in pod starts. */
function workloadStarts(w: WorkloadView): number {
  const pods = Math.max(1, w.replicas);
  if (w.kind !== "Deployment") return pods; // StatefulSets and DaemonSets: one pod at a time
  return Math.ceil(pods / Math.max(1, Math.ceil(pods * 0.25))); // maxSurge 25%
}

function gateOf(spec: MeshSpec): string {
  const a = spec.upgrade.analysis;
  const pods = `pods Ready, fewer than ${MAX_RESTARTS} restarts`;
  if (!a.prometheusUrl) return `${a.interval}: ${pods}`;
  return `${a.interval}: ${pods}; success rate ≥ ${a.minSuccessRate}, p99 ≤ ${a.maxLatencyP99Ratio}× baseline (Prometheus)`;
}

/** The rollout's steps over the workloads it restarts, as planRollout's start() forms them. */
function proxySteps(spec: MeshSpec, planned: PlannedRestart[], podStart: number): PlannedStep[] {
  const steps = rolloutSteps(spec, planned);
  const eligible = steps.reduce((n, step) => n + step.length, 0);
  const blocked = new Map(
    planned.flatMap((p) =>
      p.action.action === "Blocked" ? [[p.workload.key, p.action.message] as const] : [],
    ),
  );
  const interval = parseDuration(spec.upgrade.analysis.interval) / 1000;
  const waves = spec.upgrade.strategy === "AllAtOnce" ? [100] : spec.upgrade.waves;
  let cumulative = 0;
  return steps.map((fresh, i) => {
    cumulative += fresh.length;
    const rounds = Math.ceil(fresh.length / spec.upgrade.maxConcurrentRestarts);
    const longest = Math.max(0, ...fresh.map(workloadStarts));
    const restart = fresh.length === 0 ? 0 : rounds * longest * podStart;
    const workloads = fresh.map((w) => {
      const reason = blocked.get(w.key);
      return {
        kind: w.kind,
        namespace: w.namespace,
        name: w.name,
        pods: [...w.pods.values()].reduce((n, c) => n + c.total, 0),
        ...(reason ? { blocked: reason } : {}),
      };
    });
    return {
      name: stepName(i),
      percent: Math.round((100 * cumulative) / eligible),
      configuredPercent:
        i === 0 ? (spec.upgrade.canary.selector ? undefined : spec.upgrade.canary.percent) : waves[i - 1],
      workloads,
      pods: workloads.reduce((n, w) => n + w.pods, 0),
      gate: gateOf(spec),
      // A step that adds no workload passes at once (operator/rollout/rollout-steps.ts).
      estimateSeconds: Math.round(restart + (fresh.length === 0 ? 0 : interval)),
    };
  });
}

/**
 * With approval Manual, the plan the operator will publish once the spec changes: the same
 * pending change and steps (upgrade-approval.ts), hence the same id to approve.
 */
function approvalOf(input: PlanPreviewInput, planned: PlannedRestart[]): UpgradePlan["approval"] {
  const { desired } = input;
  if (desired.upgrade.approval !== "Manual") return { mode: desired.upgrade.approval };
  const change = pendingChange({ spec: desired, status: input.mesh.status }, desired);
  if (!change.controlPlane && !change.proxies) return { mode: "Manual" };
  const plan = upgradePlanStatus(change, rolloutSteps(desired, planned), planned, input.now);
  return { mode: "Manual", planId: plan.id, summary: plan.summary };
}

/** Workloads the plan leaves alone, with its reason. */
function skippedWorkloads(planned: PlannedRestart[]): LeftOut[] {
  return planned.flatMap((p) =>
    p.action.action === "Skip"
      ? [
          {
            namespace: p.workload.namespace,
            name: p.workload.name,
            kind: p.workload.kind,
            reason: p.action.message,
            code: p.action.reason,
          },
        ]
      : [],
  );
}

/** Pods no restartable workload owns (Jobs, CronJob and bare pods), in the rollout's own words. */
function pendingPods(others: OtherPods[], target: string): LeftOut[] {
  return others
    .filter((o) => othersOffVersion([o], target) > 0)
    .map((o) => {
      const held = otherEntry(o, target);
      return { namespace: o.namespace, name: o.name, kind: o.kind, reason: held.message, code: held.reason };
    });
}

/**
 * Pods of meshed namespaces without a proxy. Those the operator's census counts as missing one
 * (status.proxies.missing: the injector would mesh them now) say what the data-plane repair will
 * do about them; the others give the reason they stay unmeshed, in the injector's own words where
 * it has them (the census adds the Mesh's selectors, which the injector applies through its
 * webhook's configuration).
 */
export function notMeshed(input: Pick<PlanPreviewInput, "otherPods" | "namespaces" | "desired">): LeftOut[] {
  const out: LeftOut[] = [];
  for (const p of input.otherPods) {
    if (p.metadata?.deletionTimestamp || ["Succeeded", "Failed"].includes(p.status?.phase ?? "")) continue;
    const ns = input.namespaces.get(p.metadata?.namespace ?? "");
    const census = meantToBeMeshed(uninjectedPodView(p as KubernetesObject), ns, input.desired.injection);
    const injector = injectionDecision(p, ns?.annotations ?? {});
    const owner = ownerWorkload(p as PodView);
    const kind = owner
      ? owner.kind
      : (p.metadata?.ownerReferences?.find((o) => o.controller)?.kind ?? "bare pod");
    let reason: string;
    if (!injector.inject) reason = injector.reason;
    else if (!census.meshed) reason = census.reason;
    else reason = missingProxy(owner !== undefined, kind, input.desired.injection.repair);
    out.push({
      namespace: p.metadata?.namespace ?? "",
      name: owner ? owner.name : (p.metadata?.name ?? ""),
      kind,
      reason,
    });
  }
  const unique = new Map(out.map((o) => [`${o.kind}/${o.namespace}/${o.name}`, o]));
  return sortLeftOut([...unique.values()]);
}

/** What happens to a pod that should carry a proxy and does not (operator/rollout/repair-plan.ts). */
function missingProxy(restartable: boolean, kind: string, repair: MeshSpec["injection"]["repair"]): string {
  const why = "should have a proxy and has none (created while the injector was down?)";
  if (repair === "Report")
    return `${why}; reported only (spec.injection.repair: Report): restart it to mesh it`;
  if (!restartable) return `${why}; a repair never restarts a ${kind}: it gets a proxy when it is re-created`;
  return `${why}; the data-plane repair restarts it (spec.injection.repair: Restart)`;
}

function sortLeftOut(list: LeftOut[]): LeftOut[] {
  return list.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}
