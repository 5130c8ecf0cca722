// spec.upgrade.approval: Manual, as pure decisions. A new mesh or proxy version that has not
// started waits for a person: its plan — the control-plane change, the proxy rollout's steps and
// the workloads in each, what is skipped — is published, summarised, as status.upgradePlan with
// an id derived from what the plan does; the Mesh annotated trellis.dev/approve-upgrade=<id>
// lets it start. A plan that changes (other workloads, another version) has another id and needs
// its own approval; once approved it stays approved until everything it covers has started.
// The rollout controller decides and writes status.upgradePlan (it holds the fleet); the Mesh
// controller holds the control plane until the plan covering it is approved. `kubectl trellis
// upgrade plan` computes the same steps and id with these functions.
import { createHash } from "node:crypto";
import {
  ANNOTATIONS,
  counted,
  fleetProxyVersion,
  type Mesh,
  type MeshSpec,
  type MeshStatus,
  targetProxyVersion,
} from "../../api/index.ts";
import { checkVersionChange } from "../mesh/version-skew.ts";
import { stepName, stepTargets } from "./rollout-plan.ts";
import type { PlannedWorkload } from "./workload-plan.ts";
import type { WorkloadView } from "./workloads.ts";

export type UpgradePlanStatus = NonNullable<MeshStatus["upgradePlan"]>;

export interface VersionChange {
  from: string;
  to: string;
}

/** What the spec asks for that has not started yet. */
export interface PendingChange {
  controlPlane?: VersionChange;
  proxies?: VersionChange;
}

/**
 * A control-plane version the skew policy allows and no candidate revision runs yet, and a proxy
 * version no rollout has begun. An installation, a refused version (the Mesh controller reports
 * it) and a revert to the fleet's version are not upgrades waiting for anyone.
 */
export function pendingChange(mesh: Pick<Mesh, "spec" | "status">, spec: MeshSpec): PendingChange {
  const out: PendingChange = {};
  const cp = mesh.status?.controlPlane;
  const running = cp?.version;
  if (
    running !== undefined &&
    running !== spec.version &&
    cp?.targetVersion !== spec.version &&
    cp?.failedVersion !== spec.version &&
    checkVersionChange(running, spec.version, spec.upgrade.force).allowed
  )
    out.controlPlane = { from: running, to: spec.version };
  const from = fleetProxyVersion({ spec, status: mesh.status });
  const to = targetProxyVersion(spec);
  if (from !== to && mesh.status?.rollout?.toVersion !== to) out.proxies = { from, to };
  return out;
}

/** The version the fleet stays on while a new proxy version waits: an unfinished rollout's target, else the fleet's. */
export function heldProxyTarget(status: MeshStatus | undefined, fallback: string): string {
  const r = status?.rollout;
  if (r && r.state !== "Complete") return r.toVersion;
  return status?.proxies?.version ?? fallback;
}

/** Each step's new workloads, over those the plan restarts (planRollout's steps). */
export function rolloutSteps(spec: MeshSpec, planned: PlannedWorkload[]): WorkloadView[][] {
  const eligible = planned.filter((p) => p.action.action !== "Skip").map((p) => p.workload);
  if (eligible.length === 0) return [];
  const seen = new Set<string>();
  return stepTargets(spec, eligible).map((cohort) => {
    const fresh = cohort.filter((w) => !seen.has(w.key));
    for (const w of fresh) seen.add(w.key);
    return fresh;
  });
}

const podsOf = (w: WorkloadView) => [...w.pods.values()].reduce((n, c) => n + c.total, 0);

/** The plan as status.upgradePlan carries it, awaiting approval; its id is a hash of what it does. */
export function upgradePlanStatus(
  change: PendingChange,
  steps: WorkloadView[][],
  planned: PlannedWorkload[],
  since: Date,
): UpgradePlanStatus {
  const skipped = planned.filter((p) => p.action.action === "Skip").map((p) => p.workload.key);
  const proxySteps = change.proxies ? steps : [];
  const what = {
    controlPlane: change.controlPlane ?? null,
    proxies: change.proxies ?? null,
    steps: proxySteps.map((s) => s.map((w) => w.key)),
    skipped: change.proxies ? skipped : [],
  };
  const id = createHash("sha256").update(JSON.stringify(what)).digest("hex").slice(0, 12);
  const parts: string[] = [];
  if (change.controlPlane)
    parts.push(`control plane ${change.controlPlane.from} → ${change.controlPlane.to}`);
  if (change.proxies) {
    const n = proxySteps.reduce((k, s) => k + s.length, 0);
    const counts = proxySteps.map((s) => s.length).join(", ");
    parts.push(
      `proxies ${change.proxies.from} → ${change.proxies.to}: ${counted(n, "workload")} in ${counted(proxySteps.length, "step")}${n > 0 ? ` (${counts})` : ""}${what.skipped.length > 0 ? `, ${what.skipped.length} skipped` : ""}`,
    );
  }
  return {
    id,
    state: "AwaitingApproval",
    summary: parts.join("; "),
    ...(change.controlPlane ? { controlPlane: change.controlPlane } : {}),
    ...(change.proxies
      ? {
          proxies: change.proxies,
          steps: proxySteps.map((s, i) => ({
            name: stepName(i),
            workloads: s.length,
            pods: s.reduce((n, w) => n + podsOf(w), 0),
          })),
          skippedWorkloads: what.skipped.length,
        }
      : {}),
    since: since.toISOString(),
  };
}

/** An approved plan still covers what is pending: the same target versions. */
function covers(plan: UpgradePlanStatus, change: PendingChange): boolean {
  return (
    (!change.controlPlane || plan.controlPlane?.to === change.controlPlane.to) &&
    (!change.proxies || plan.proxies?.to === change.proxies.to)
  );
}

export interface ApprovalDecision {
  plan: UpgradePlanStatus | undefined;
  /** Do not start the proxy rollout the spec asks for. */
  holdProxies: boolean;
  events: Array<{ type: "Normal" | "Warning"; reason: string; message: string }>;
}

export interface ApprovalInput {
  spec: MeshSpec;
  status: MeshStatus | undefined;
  annotations: Record<string, string> | undefined;
  change: PendingChange;
  steps: WorkloadView[][];
  planned: PlannedWorkload[];
  now: Date;
}

export function decideApproval(input: ApprovalInput): ApprovalDecision {
  const { spec, change, now } = input;
  if (spec.upgrade.approval !== "Manual" || (!change.controlPlane && !change.proxies))
    return { plan: undefined, holdProxies: false, events: [] };
  const previous = input.status?.upgradePlan;
  if (previous?.state === "Approved" && covers(previous, change))
    return { plan: previous, holdProxies: false, events: [] };
  const fresh = upgradePlanStatus(change, input.steps, input.planned, now);
  const plan = previous?.id === fresh.id && previous.since ? { ...fresh, since: previous.since } : fresh;
  if (input.annotations?.[ANNOTATIONS.approveUpgrade] === plan.id)
    return {
      plan: { ...plan, state: "Approved" },
      holdProxies: false,
      events: [
        {
          type: "Normal",
          reason: "UpgradeApproved",
          message: `Upgrade plan ${plan.id} approved: ${plan.summary}`,
        },
      ],
    };
  const events: ApprovalDecision["events"] =
    previous?.id === plan.id && previous.state === "AwaitingApproval"
      ? []
      : [
          {
            type: "Normal",
            reason: "UpgradeAwaitingApproval",
            message: `Upgrade plan ${plan.id} waits for approval (kubectl trellis upgrade approve): ${plan.summary}`,
          },
        ];
  return { plan, holdProxies: change.proxies !== undefined, events };
}

/** The Mesh controller's side: hold a pending control-plane version until a plan covering it is approved. */
export function holdControlPlane(mesh: Pick<Mesh, "spec" | "status">, spec: MeshSpec): boolean {
  if (spec.upgrade.approval !== "Manual") return false;
  const change = pendingChange(mesh, spec).controlPlane;
  if (!change) return false;
  const plan = mesh.status?.upgradePlan;
  return !(plan?.state === "Approved" && plan.controlPlane?.to === change.to);
}
