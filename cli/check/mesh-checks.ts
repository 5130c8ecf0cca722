// Checks of each Mesh: Ready for the current generation, control-plane pods per revision,
// certificate horizons, the trust bundle in every meshed namespace, and a rollout or rotation
// that has stopped moving. Pure over CheckFacts.

import type { V1Pod } from "@kubernetes/client-node";
import {
  type Certificate,
  counted,
  LABELS,
  type Mesh,
  parseDuration,
  validateMeshSpec,
} from "../../api/index.ts";
import { stepName } from "../../operator/rollout/rollout-plan.ts";
import { humanDuration } from "../output.ts";
import type { CheckFacts } from "./check-facts.ts";
import { type CheckResult, limitDetails } from "./checks.ts";

/** A certificate this close to expiry is a warning even when its renewal is still ahead. */
export const EXPIRY_WARNING_MS = 7 * 24 * 3600_000;
/** A rotation phase that waits on proxies, after which it is called stuck (IssuerSwitched adds the leaf lifetime). */
export const ROTATION_PHASE_DEADLINE_MS = 10 * 60_000;

export function meshChecks(facts: CheckFacts): CheckResult[] {
  if (!facts.meshes)
    return [{ group: "mesh", id: "mesh", status: "warn", message: "cannot read Meshes (forbidden)" }];
  if (facts.meshes.length === 0)
    return [
      {
        group: "mesh",
        id: "mesh",
        status: "fail",
        message: "no Mesh in the cluster",
        hint: "kubectl apply -f docs/examples/mesh.yaml",
      },
    ];
  const out: CheckResult[] = [];
  for (const mesh of facts.meshes) {
    const group = `mesh ${mesh.metadata?.name}`;
    out.push(
      readyCheck(mesh, group),
      ...controlPlaneChecks(facts, mesh, group),
      ...progressChecks(facts, mesh, group),
    );
    out.push(...bundleChecks(facts, mesh, group));
  }
  out.push(...certificateChecks(facts));
  return out;
}

function readyCheck(mesh: Mesh, group: string): CheckResult {
  const id = "mesh-ready";
  const generation = mesh.metadata?.generation ?? 0;
  const observed = mesh.status?.observedGeneration;
  const ready = mesh.status?.conditions?.find((c) => c.type === "Ready");
  if (observed === undefined || observed < generation)
    return {
      group,
      id,
      status: "fail",
      message: `the operator has not observed generation ${generation} (observed ${observed ?? "none"})`,
      hint: "check that the operator runs and can read Meshes",
    };
  if (ready?.status === "True")
    return { group, id, status: "ok", message: `Ready (generation ${generation} observed)` };
  const degraded = mesh.status?.conditions?.find((c) => c.type === "Degraded" && c.status === "True");
  const progressing = mesh.status?.conditions?.find((c) => c.type === "Progressing" && c.status === "True");
  const shown = degraded ?? ready;
  return {
    group,
    id,
    status: progressing && !degraded ? "warn" : "fail",
    message: `not Ready, phase ${mesh.status?.phase ?? "?"}: ${shown?.reason ?? "?"}: ${shown?.message ?? ""}`,
    hint: `kubectl describe mesh ${mesh.metadata?.name}`,
  };
}

function isPodReady(p: V1Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Why a pod is not ready, in the words `kubectl get pods` would use. */
export function podTrouble(p: V1Pod): string {
  if (p.metadata?.deletionTimestamp) return "Terminating";
  const waiting = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].find(
    (c) => c.state?.waiting?.reason,
  )?.state?.waiting?.reason;
  return waiting ?? p.status?.phase ?? "Unknown";
}

function controlPlaneChecks(facts: CheckFacts, mesh: Mesh, group: string): CheckResult[] {
  const id = "control-plane";
  if (!facts.controlPlanePods)
    return [{ group, id, status: "warn", message: "cannot read pods in trellis-system (forbidden)" }];
  const pods = facts.controlPlanePods.filter(
    (p) =>
      p.metadata?.labels?.[LABELS.mesh] === mesh.metadata?.name && p.metadata?.labels?.[LABELS.component],
  );
  if (pods.length === 0)
    return [
      {
        group,
        id,
        status: "fail",
        message: "no control-plane pods",
        hint: `kubectl describe mesh ${mesh.metadata?.name}`,
      },
    ];
  const revisions = [...new Set(pods.map((p) => p.metadata?.labels?.[LABELS.version] ?? "?"))].sort();
  return revisions.map((version) => {
    const mine = pods.filter((p) => (p.metadata?.labels?.[LABELS.version] ?? "?") === version);
    const components = [...new Set(mine.map((p) => p.metadata?.labels?.[LABELS.component] ?? ""))].sort();
    const counts = components.map((c) => {
      const of = mine.filter((p) => p.metadata?.labels?.[LABELS.component] === c);
      return `${c} ${of.filter(isPodReady).length}/${of.length}`;
    });
    const notReady = mine.filter((p) => !isPodReady(p));
    const base = `control plane ${version}: ${counts.join(", ")} ready`;
    if (notReady.length === 0) return { group, id, status: "ok" as const, message: base };
    return {
      group,
      id,
      status: "fail" as const,
      message: `${base}; ${counted(notReady.length, "pod")} not ready`,
      hint: "kubectl -n trellis-system describe pod NAME",
      details: limitDetails(notReady.map((p) => `${p.metadata?.name} (${podTrouble(p)})`)),
    };
  });
}

function progressChecks(facts: CheckFacts, mesh: Mesh, group: string): CheckResult[] {
  const out: CheckResult[] = [];
  const checked = validateMeshSpec(mesh.spec);
  if (!checked.ok) return out;
  const spec = checked.value;
  const now = facts.now.getTime();
  const r = mesh.status?.rollout;
  if (r && r.state !== "Complete") {
    const id = "rollout-progress";
    const what = `proxy rollout ${r.fromVersion} → ${r.toVersion}, ${stepName(r.step)} ${r.state.toLowerCase()}`;
    const since = (t: string | undefined) => (t ? now - Date.parse(t) : 0);
    const deadline = parseDuration(spec.upgrade.stepDeadline);
    const interval = parseDuration(spec.upgrade.analysis.interval);
    if (r.state === "Restarting" && since(r.stepStartedAt) > deadline)
      out.push({
        group,
        id,
        status: "fail",
        message: `${what} for ${humanDuration(since(r.stepStartedAt))}, past its stepDeadline ${spec.upgrade.stepDeadline}`,
        hint: "kubectl trellis rollout status",
      });
    else if (r.state === "Analysing" && since(r.analysisSince) > interval + 60_000)
      out.push({
        group,
        id,
        status: "fail",
        message: `${what} for ${humanDuration(since(r.analysisSince))}, past its interval ${spec.upgrade.analysis.interval}`,
        hint: "check that the operator runs (kubectl trellis check)",
      });
    else if (r.state === "Paused")
      out.push({ group, id, status: "warn", message: `${what}`, hint: "kubectl trellis rollout resume" });
    else if (r.state === "Halted" || r.state === "RolledBack")
      out.push({
        group,
        id,
        status: "fail",
        message: `proxy rollout ${r.fromVersion} → ${r.toVersion} ${r.state === "Halted" ? "halted" : "rolled back"}: ${r.message ?? ""}`,
        hint: `set spec.proxy.version to a fixed release (kubectl trellis upgrade plan --proxy-version VERSION first)`,
      });
    else out.push({ group, id, status: "ok", message: `${what}, moving` });
  }
  out.push(
    ...repairChecks(mesh, group, {
      now,
      deadline: spec.upgrade.stepDeadline,
      interval: spec.upgrade.analysis.interval,
    }),
  );
  const plan = mesh.status?.upgradePlan;
  if (plan?.state === "AwaitingApproval")
    out.push({
      group,
      id: "upgrade-approval",
      status: "warn",
      message: `upgrade plan ${plan.id} waits for approval: ${plan.summary}`,
      hint: `review it with kubectl trellis upgrade plan, then kubectl trellis upgrade approve --plan ${plan.id}`,
    });
  const t = mesh.status?.trustAnchor;
  if (t && t.rotationPhase !== "Stable") {
    const phaseMs = t.phaseSince ? now - Date.parse(t.phaseSince) : 0;
    const limit =
      ROTATION_PHASE_DEADLINE_MS +
      (t.rotationPhase === "IssuerSwitched" ? parseDuration(spec.identity.leafLifetime) : 0);
    const message = `trust-anchor rotation in phase ${t.rotationPhase} for ${humanDuration(phaseMs)}`;
    out.push(
      phaseMs > limit
        ? {
            group,
            id: "rotation-progress",
            status: "fail",
            message: `${message}: ${t.message ?? ""}`,
            hint: "kubectl trellis check --proxies (proxies that have not taken the new anchor)",
          }
        : { group, id: "rotation-progress", status: "ok", message: `${message}, moving` },
    );
  }
  return out;
}

/**
 * The data plane as the operator counts it (DataPlaneIncomplete, status.proxies) and its repair
 * (status.repair): a repair stuck past its deadlines or halted fails, one moving passes; gaps the
 * operator reports warn (check --proxies lists them).
 */
function repairChecks(
  mesh: Mesh,
  group: string,
  at: { now: number; deadline: string; interval: string },
): CheckResult[] {
  const out: CheckResult[] = [];
  const name = mesh.metadata?.name ?? "default";
  const r = mesh.status?.repair;
  if (r && (r.state === "Restarting" || r.state === "Analysing" || r.state === "Halted")) {
    const id = "repair-progress";
    const what = `data-plane repair, ${stepName(r.step)} (step ${r.step + 1} of ${r.steps}) ${r.state.toLowerCase()}`;
    const since = (t: string | undefined) => (t ? at.now - Date.parse(t) : 0);
    if (r.state === "Halted")
      out.push({
        group,
        id,
        status: "fail",
        message: `data-plane repair halted: ${r.message ?? ""}`,
        hint: `kubectl describe mesh ${name}; once the cause is fixed, kubectl trellis rollout pause then resume starts it again`,
      });
    else if (r.state === "Restarting" && since(r.stepStartedAt) > parseDuration(at.deadline))
      out.push({
        group,
        id,
        status: "fail",
        message: `${what} for ${humanDuration(since(r.stepStartedAt))}, past its stepDeadline ${at.deadline}`,
        hint: `kubectl describe mesh ${name}`,
      });
    else if (r.state === "Analysing" && since(r.analysisSince) > parseDuration(at.interval) + 60_000)
      out.push({
        group,
        id,
        status: "fail",
        message: `${what} for ${humanDuration(since(r.analysisSince))}, past its interval ${at.interval}`,
        hint: "check that the operator runs (kubectl trellis check)",
      });
    else
      out.push({
        group,
        id,
        status: "ok",
        message: `${what}, moving: ${r.updatedWorkloads ?? 0}/${r.totalWorkloads ?? 0} workloads restarted`,
      });
  }
  const incomplete = mesh.status?.conditions?.find((c) => c.type === "DataPlaneIncomplete");
  if (incomplete?.status === "True")
    out.push({
      group,
      id: "data-plane",
      status: "warn",
      message: `data plane incomplete (${incomplete.reason}): ${incomplete.message}`,
      hint: "kubectl trellis check --proxies lists the pods",
    });
  return out;
}

function bundleChecks(facts: CheckFacts, mesh: Mesh, group: string): CheckResult[] {
  const id = "trust-bundle";
  const want = mesh.status?.trustAnchor?.bundleFingerprints ?? [];
  const missing: string[] = [];
  const stale: string[] = [];
  for (const { name } of facts.meshedNamespaces) {
    const have = facts.bundles.get(name);
    if (have === undefined) missing.push(name);
    else if (have.join(",") !== want.join(",")) stale.push(name);
  }
  const n = facts.meshedNamespaces.length;
  if (missing.length + stale.length === 0)
    return [
      { group, id, status: "ok", message: `trust bundle current in ${counted(n, "meshed namespace")}` },
    ];
  return [
    {
      group,
      id,
      status: "fail",
      message: `trust bundle ${[missing.length ? `missing in ${missing.length}` : "", stale.length ? `out of date in ${stale.length}` : ""].filter(Boolean).join(" and ")} of ${counted(n, "meshed namespace")}`,
      hint: "the operator writes ConfigMap trellis-trust-bundle into each meshed namespace; check its log",
      details: limitDetails([
        ...missing.map((m) => `${m} (missing)`),
        ...stale.map((s) => `${s} (out of date)`),
      ]),
    },
  ];
}

function certificateChecks(facts: CheckFacts): CheckResult[] {
  const group = "certificates";
  if (!facts.certificates)
    return [{ group, id: "certificates", status: "warn", message: "cannot read Certificates (forbidden)" }];
  const rotation = facts.meshes?.[0]?.spec?.identity?.rotation;
  return [...facts.certificates]
    .sort((a, b) => certificateName(a).localeCompare(certificateName(b)))
    .map((c) => certificateCheck(c, facts.now, rotation));
}

const certificateName = (c: Certificate) => `${c.metadata?.namespace}/${c.metadata?.name}`;

export function certificateCheck(
  c: Certificate,
  now: Date,
  rotation: { automatic?: boolean; before?: string } | undefined,
): CheckResult {
  const group = "certificates";
  const id = "certificate";
  const name = certificateName(c);
  const type = { TrustAnchor: "trust anchor", Issuer: "issuer", Serving: "serving" }[c.spec.type];
  const ready = c.status?.conditions?.find((x) => x.type === "Ready");
  const notAfter = c.status?.notAfter ? Date.parse(c.status.notAfter) : undefined;
  const renewal = c.status?.renewalTime ? Date.parse(c.status.renewalTime) : undefined;
  const left = notAfter === undefined ? undefined : notAfter - now.getTime();
  const prefix = `${type} ${name}`;
  if (left !== undefined && left <= 0)
    return {
      group,
      id,
      status: "fail",
      message: `${prefix} expired ${humanDuration(left)} ago`,
      hint: `kubectl describe certificate -n ${c.metadata?.namespace} ${c.metadata?.name}`,
    };
  if (ready?.status !== "True" || left === undefined)
    return {
      group,
      id,
      status: "fail",
      message: `${prefix} not Ready: ${ready?.reason ?? "not issued"}${ready?.message ? `: ${ready.message}` : ""}`,
      hint: `kubectl describe certificate -n ${c.metadata?.namespace} ${c.metadata?.name}`,
    };
  const next =
    c.spec.type === "TrustAnchor"
      ? rotation?.automatic === false
        ? "automatic rotation off"
        : `rotation ${rotation?.before ?? "720h"} before expiry`
      : renewal === undefined
        ? "no renewal scheduled"
        : renewal <= now.getTime()
          ? `renewal overdue by ${humanDuration(now.getTime() - renewal)}`
          : `renewal in ${humanDuration(renewal - now.getTime())}`;
  const message = `${prefix} expires in ${humanDuration(left)} (${next})`;
  const overdue = renewal !== undefined && renewal < now.getTime() - 60_000 && c.spec.type !== "TrustAnchor";
  if (left < EXPIRY_WARNING_MS || overdue || next === "no renewal scheduled")
    return {
      group,
      id,
      status: "warn",
      message,
      hint: overdue
        ? "the operator should have renewed it: check its log"
        : `renewal or rotation is due; kubectl describe certificate -n ${c.metadata?.namespace} ${c.metadata?.name}`,
    };
  return { group, id, status: "ok", message };
}
