// The control-plane lifecycle as a pure decision: given the Mesh spec, what status recorded
// (the running version, a candidate and since when, a version that failed) and the health the
// cluster shows per version, decide which revisions to run, the next recorded state, the
// phase, and the Events to emit. Install, canaried upgrade, promotion and automatic rollback
// all come out of this one function, so a restarted operator resumes from status + cluster.
import { type MeshSpec, parseDuration } from "../../api/index.ts";
import { checkVersionChange } from "./version-skew.ts";

export interface ControlPlaneState {
  /** The version whose revision is active (Services and webhook point at it). */
  version?: string;
  /** The version being brought up beside it. */
  targetVersion?: string;
  candidateSince?: string;
  /** A version that did not become healthy in time and was rolled back. */
  failedVersion?: string;
  previousVersion?: string;
}

export type VersionHealth = { healthy: true } | { healthy: false; detail: string };

export type Phase =
  | "Installing"
  | "Ready"
  | "Upgrading"
  | "RolledBack"
  | "UpgradeBlocked"
  | "Paused"
  | "Degraded";

export interface PlanEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export interface ControlPlanePlan {
  /** Versions whose revisions must exist; the first is active. */
  versions: string[];
  state: ControlPlaneState;
  phase: Phase;
  /** Reason and message for the conditions (Ready/Progressing/Degraded are derived from phase). */
  reason: string;
  message: string;
  events: PlanEvent[];
  requeueAfterMs?: number;
}

export interface PlanInput {
  spec: MeshSpec;
  state: ControlPlaneState;
  health: (version: string) => VersionHealth;
  now: Date;
  /** The Ready condition's reason in the status read, to tell an outage's start and end. */
  previousReason?: string;
}

export function planControlPlane(input: PlanInput): ControlPlanePlan {
  const { spec, state } = input;
  const desired = spec.version;
  const running = state.version;
  if (running === undefined) return planInstall(input);
  if (desired === running) return planSteady(input, running);
  const base: ControlPlaneState = { version: running, previousVersion: state.previousVersion };
  if (state.failedVersion === desired) {
    return {
      versions: [running],
      state: { ...base, failedVersion: desired },
      phase: "RolledBack",
      reason: "UpgradeFailed",
      message: `version ${desired} did not become healthy within ${spec.upgrade.controlPlaneDeadline} and was rolled back; ${running} keeps running. Set spec.version to ${running} or to a fixed release.`,
      events: [],
    };
  }
  const verdict = checkVersionChange(running, desired, spec.upgrade.force);
  if (!verdict.allowed) {
    return {
      versions: [running],
      state: base,
      phase: "UpgradeBlocked",
      reason: verdict.reason,
      message: verdict.message,
      events: [],
    };
  }
  return planUpgrade(input, running, base);
}

function planInstall({ spec, health }: PlanInput): ControlPlanePlan {
  const version = spec.version;
  const h = health(version);
  if (h.healthy) {
    return {
      versions: [version],
      state: { version },
      phase: "Ready",
      reason: "Installed",
      message: `control plane ${version} is available`,
      events: [{ type: "Normal", reason: "Installed", message: `Control plane ${version} is available` }],
    };
  }
  return {
    versions: [version],
    state: {},
    phase: "Installing",
    reason: "Installing",
    message: `installing ${version}: ${h.detail}`,
    events: [],
  };
}

function planSteady(input: PlanInput, running: string): ControlPlanePlan {
  const { state, health } = input;
  const h = health(running);
  const next: ControlPlaneState = { version: running, previousVersion: state.previousVersion };
  const events: PlanEvent[] = [];
  if (state.targetVersion !== undefined && state.targetVersion !== running) {
    events.push({
      type: "Normal",
      reason: "UpgradeCancelled",
      message: `Upgrade to ${state.targetVersion} cancelled; staying on ${running}`,
    });
  }
  // An outage of the running control plane gets one Event when it starts and one when it ends.
  const wasUnavailable = input.previousReason === "ComponentsUnavailable";
  if (h.healthy) {
    if (wasUnavailable) {
      events.push({
        type: "Normal",
        reason: "ComponentsAvailable",
        message: `Control plane ${running} is available again`,
      });
    }
    return {
      versions: [running],
      state: next,
      phase: "Ready",
      reason: "Available",
      message: `control plane ${running} is available`,
      events,
    };
  }
  if (!wasUnavailable) {
    events.push({
      type: "Warning",
      reason: "ComponentsUnavailable",
      message: `Control plane ${running} is unavailable: ${h.detail}; proxies keep serving from their last known state`,
    });
  }
  return {
    versions: [running],
    state: next,
    phase: "Degraded",
    reason: "ComponentsUnavailable",
    message: h.detail,
    events,
  };
}

function planUpgrade(input: PlanInput, running: string, base: ControlPlaneState): ControlPlanePlan {
  const { spec, state, health, now } = input;
  const desired = spec.version;
  const events: PlanEvent[] = [];
  let since = state.targetVersion === desired ? state.candidateSince : undefined;
  if (since === undefined) {
    since = now.toISOString();
    events.push({
      type: "Normal",
      reason: "UpgradeStarted",
      message: `Deploying control plane ${desired} beside ${running}`,
    });
  }
  const candidate: ControlPlaneState = { ...base, targetVersion: desired, candidateSince: since };
  const versions = spec.upgrade.strategy === "AllAtOnce" ? [desired] : [running, desired];
  if (spec.upgrade.paused) {
    return {
      versions,
      state: candidate,
      phase: "Paused",
      reason: "UpgradePaused",
      message: `upgrade to ${desired} is paused (spec.upgrade.paused)`,
      events,
    };
  }
  const h = health(desired);
  if (h.healthy) {
    events.push({
      type: "Normal",
      reason: "Upgraded",
      message: `Control plane ${desired} took over from ${running}`,
    });
    return {
      versions: [desired],
      state: { version: desired, previousVersion: running },
      phase: "Ready",
      reason: "Upgraded",
      message: `control plane ${desired} is available`,
      events,
    };
  }
  const deadlineMs = parseDuration(spec.upgrade.controlPlaneDeadline);
  const elapsed = now.getTime() - Date.parse(since);
  if (elapsed >= deadlineMs) {
    events.push({
      type: "Warning",
      reason: "RolledBack",
      message: `Control plane ${desired} was not healthy after ${spec.upgrade.controlPlaneDeadline} (${h.detail}); rolled back to ${running}`,
    });
    return {
      versions: [running],
      state: { ...base, failedVersion: desired },
      phase: "RolledBack",
      reason: "UpgradeFailed",
      message: `version ${desired} did not become healthy within ${spec.upgrade.controlPlaneDeadline}: ${h.detail}; rolled back to ${running}`,
      events,
    };
  }
  return {
    versions,
    state: candidate,
    phase: "Upgrading",
    reason: "CandidateStarting",
    message: `waiting for ${desired} beside ${running}: ${h.detail}`,
    events,
    requeueAfterMs: deadlineMs - elapsed + 100,
  };
}
