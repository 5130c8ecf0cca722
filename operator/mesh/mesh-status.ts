// The Mesh's status as a pure function of the decisions made in a reconcile: the control-plane
// plan, the components observed, the identity's readiness, and the proxy rollout (whose own
// fields, status.rollout and status.proxies, the rollout controller writes). Ready /
// Progressing / Degraded and the phase are derived here and only here, so every path tells the
// same truth.
import type { MeshStatus } from "../../api/index.ts";
import { type Condition, setCondition } from "../../kube/index.ts";
import { describeGaps } from "../rollout/data-plane.ts";
import { MAX_HELD } from "../rollout/rollout-report.ts";
import type { ControlPlanePlan, Phase } from "./control-plane-plan.ts";
import type { ComponentObservation } from "./observe.ts";

/** The top-level status fields the Mesh controller owns; the rest belong to the rollout controller. */
export const MESH_STATUS_KEYS = [
  "observedGeneration",
  "conditions",
  "phase",
  "version",
  "targetVersion",
  "operatorVersion",
  "controlPlane",
  "trustAnchor",
  "capture",
] as const;

export interface Blocker {
  reason: string;
  message: string;
  degraded: boolean;
  /** The phase to show while this blocks readiness. */
  phase: string;
  /** Work in progress that leaves the mesh fully working (a trust-anchor rotation). */
  keepsReady?: boolean;
}

export interface StatusInput {
  previous: MeshStatus | undefined;
  generation: number;
  plan: ControlPlanePlan;
  components: ComponentObservation[];
  operatorVersion: string;
  trustAnchor?: MeshStatus["trustAnchor"];
  /** The capture mode new pods get and the trellis-cni DaemonSet's state (cni-plan.ts). */
  capture?: MeshStatus["capture"];
  /** A reason the mesh cannot be ready regardless of the control plane (e.g. identity not issued yet). */
  blocker?: Blocker;
  /** DataPlaneIncomplete (dataPlaneCondition), when known. */
  dataPlane?: { status: boolean; reason: string; message: string };
  now: Date;
}

const PROGRESSING: ReadonlySet<Phase> = new Set(["Installing", "Upgrading"]);
const DEGRADED: ReadonlySet<Phase> = new Set(["RolledBack", "UpgradeBlocked", "Degraded"]);

/** What the proxy rollout (written by the rollout controller) says about readiness. */
export function rolloutBlocker(rollout: MeshStatus["rollout"]): Blocker | undefined {
  if (!rollout) return undefined;
  // Only the step and state: progress counters live in status.rollout, and echoing them here
  // would rewrite the conditions with every pod that restarts.
  const step = rollout.step === 0 ? "canary" : `wave ${rollout.step}`;
  const settled = rollout.state === "Halted" || rollout.state === "RolledBack";
  const about = `proxy ${rollout.fromVersion} → ${rollout.toVersion}: ${settled ? (rollout.message ?? rollout.state) : `${step} ${rollout.state.toLowerCase()}`}`;
  switch (rollout.state) {
    case "Restarting":
    case "Analysing": {
      // Blocked workloads are named (from the held list, which changes rarely), not counted.
      const blocked = (rollout.held ?? []).slice(0, rollout.blockedWorkloads ?? 0);
      if (blocked.length > 0) {
        const names = blocked.map((h) => `${h.workload.replace("/", " ")} (${h.message})`);
        const message = `${about}, waiting for ${names.join("; ")}`;
        return { reason: "RolloutBlocked", message, degraded: false, phase: "RollingOut" };
      }
      return { reason: "RollingOutProxy", message: about, degraded: false, phase: "RollingOut" };
    }
    case "Paused":
      return { reason: "RolloutPaused", message: about, degraded: false, phase: "Paused" };
    case "Halted":
      return { reason: "RolloutHalted", message: about, degraded: true, phase: "Degraded" };
    case "RolledBack":
      return { reason: "RolloutFailed", message: about, degraded: true, phase: "Degraded" };
    default:
      return undefined;
  }
}

/** What a data-plane repair in progress (or halted) says about readiness: the mesh stays Ready. */
export function repairBlocker(repair: MeshStatus["repair"]): Blocker | undefined {
  if (!repair) return undefined;
  const step = repair.step === 0 ? "canary" : `wave ${repair.step}`;
  const about = `data-plane repair: ${repair.state === "Halted" ? (repair.message ?? "halted") : `${step} ${repair.state.toLowerCase()}`}`;
  switch (repair.state) {
    case "Restarting":
    case "Analysing":
      return {
        reason: "RepairingDataPlane",
        message: about,
        degraded: false,
        phase: "Repairing",
        keepsReady: true,
      };
    case "Halted":
      return { reason: "RepairFailed", message: about, degraded: true, phase: "Degraded", keepsReady: true };
    default:
      return undefined;
  }
}

/**
 * DataPlaneIncomplete: True while pods that should carry the proxy run without one, or proxies
 * run outside the skew policy (status.proxies, which the rollout controller counts), naming the
 * first workloads and the totals, and what is done about it.
 */
export function dataPlaneCondition(
  proxies: MeshStatus["proxies"],
  repair: MeshStatus["repair"],
  mode: "Restart" | "Report",
): { status: boolean; reason: string; message: string } {
  const missing = proxies?.missing ?? 0;
  const skew = proxies?.outOfSkew ?? 0;
  if (missing + skew === 0)
    return {
      status: false,
      reason: "DataPlaneComplete",
      message: "every pod that should carry the proxy does, within the skew policy",
    };
  const owners = (proxies?.incomplete ?? []).map((o) => ({ ...o, key: o.workload }));
  const gaps = describeGaps(owners, { missing, outOfSkew: skew }, { complete: owners.length < MAX_HELD });
  const active = repair && (repair.state === "Restarting" || repair.state === "Analysing");
  const doing =
    mode === "Report"
      ? "spec.injection.repair is Report: restart them, or set it to Restart"
      : active
        ? "a repair restarts their workloads"
        : (repair?.message ?? "their workloads are restarted when nothing else restarts workloads");
  return {
    status: true,
    reason: missing > 0 ? "ProxiesMissing" : "ProxiesOutOfSkew",
    message: `${gaps}; ${doing}`,
  };
}

/** An upgrade waiting for approval (status.upgradePlan, written by the rollout controller): the running version serves. */
export function approvalBlocker(plan: MeshStatus["upgradePlan"]): Blocker | undefined {
  if (plan?.state !== "AwaitingApproval") return undefined;
  return {
    reason: "AwaitingApproval",
    message: `upgrade plan ${plan.id} waits for approval (kubectl trellis upgrade approve): ${plan.summary}`,
    degraded: false,
    phase: "AwaitingApproval",
    keepsReady: true,
  };
}

/**
 * The blocker the conditions show when several hold the mesh back (identity, rollout): a failure
 * first, so a rolled-back proxy rollout is Degraded even while a trust-anchor rotation goes on;
 * otherwise the first given.
 */
export function pickBlocker(...blockers: Array<Blocker | undefined>): Blocker | undefined {
  const present = blockers.filter((b): b is Blocker => b !== undefined);
  return present.find((b) => b.degraded) ?? present[0];
}

export function meshStatus(input: StatusInput): MeshStatus {
  const { plan, generation, now, blocker } = input;
  const ready = plan.phase === "Ready" && (blocker === undefined || blocker.keepsReady === true);
  let conditions: Condition[] = (input.previous?.conditions ?? []) as Condition[];
  const set = (type: string, status: boolean, reason: string, message: string) => {
    conditions = setCondition(
      conditions,
      { type, status: status ? "True" : "False", reason, message, observedGeneration: generation },
      now,
    );
  };
  const summary = plan.phase !== "Ready" ? plan : (blocker ?? plan);
  const cpProgressing = PROGRESSING.has(plan.phase);
  const cpDegraded = DEGRADED.has(plan.phase);
  set("Ready", ready, ready ? plan.reason : summary.reason, ready ? plan.message : summary.message);
  // (a blocker that keeps the mesh ready still shows as Progressing below)
  const progressing =
    cpProgressing ||
    (!cpDegraded &&
      blocker !== undefined &&
      !blocker.degraded &&
      blocker.phase !== "Paused" &&
      blocker.phase !== "AwaitingApproval");
  set(
    "Progressing",
    progressing,
    progressing ? summary.reason : "Stable",
    progressing ? summary.message : "no change in progress",
  );
  const degraded = cpDegraded || blocker?.degraded === true;
  const degradedBy = cpDegraded ? plan : blocker;
  set(
    "Degraded",
    degraded,
    degraded && degradedBy ? degradedBy.reason : "Healthy",
    degraded && degradedBy ? degradedBy.message : "no failure",
  );
  if (input.dataPlane)
    set("DataPlaneIncomplete", input.dataPlane.status, input.dataPlane.reason, input.dataPlane.message);
  const phase = plan.phase === "Ready" && blocker ? blocker.phase : plan.phase;
  return {
    observedGeneration: generation,
    conditions,
    phase,
    version: plan.state.version,
    targetVersion: plan.state.targetVersion,
    operatorVersion: input.operatorVersion,
    controlPlane: { ...plan.state, components: input.components },
    trustAnchor: input.trustAnchor ?? input.previous?.trustAnchor,
    ...(input.capture ? { capture: input.capture } : {}),
  };
}

/** The part of a status the Mesh controller owns (what it may re-apply unchanged). */
export function meshOwnedStatus(status: MeshStatus | undefined): MeshStatus {
  const s = (status ?? {}) as Record<string, unknown>;
  return Object.fromEntries(
    MESH_STATUS_KEYS.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]),
  ) as MeshStatus;
}
