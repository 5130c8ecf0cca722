// `check --proxies`: the data plane of the first Mesh — proxies outside the skew policy, pods that
// should carry the proxy and run without one, and proxies whose reported trust bundle lacks the
// current anchor. The first two are the operator's own census (operator/rollout/data-plane.ts:
// the injector's rule, its webhook's selectors, the skew policy), over the pods read here, so the
// command line counts exactly what the Mesh's status.proxies.missing and outOfSkew count, grouped
// by the same owners; the hint says what the operator's repair (spec.injection.repair) does.
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import {
  counted,
  LABELS,
  type Mesh,
  type MeshSpec,
  parseRevision,
  validateMeshSpec,
} from "../../api/index.ts";
import { reportOf } from "../../operator/mesh/mesh-identity.ts";
import { proxySkew } from "../../operator/mesh/version-skew.ts";
import { podView, uninjectedPodView } from "../../operator/resources.ts";
import {
  type DataPlaneCensus,
  dataPlaneCensus,
  gapsByOwner,
  type NamespaceView,
  type OwnerGaps,
} from "../../operator/rollout/data-plane.ts";
import { stepName } from "../../operator/rollout/rollout-plan.ts";
import { ownerKey } from "../../operator/rollout/workloads.ts";
import type { CheckFacts } from "./check-facts.ts";
import { type CheckResult, limitDetails } from "./checks.ts";

const group = "data plane";

const podName = (p: V1Pod) => `${p.metadata?.namespace}/${p.metadata?.name}`;
const isLive = (p: V1Pod) =>
  !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";

/** Owners the repair never restarts (it would lose their work): they are re-created by hand. */
const REPORTED_ONLY = new Set(["Pod", "Job", "ReplicaSet", "ReplicationController"]);

/** "Deployment shop/web", as the Mesh's DataPlaneIncomplete condition names it. */
function ownerText(key: string): string {
  const [kind, ...rest] = key.split("/");
  return `${kind === "Pod" ? "bare pod" : kind} ${rest.join("/")}`;
}

/** The operator's census over the pods `check` read: what status.proxies counts. */
export function census(facts: CheckFacts, mesh: Mesh | undefined): DataPlaneCensus {
  const spec = meshSpec(mesh);
  const byName = new Map<string, NamespaceView>();
  for (const n of facts.meshedNamespaces) byName.set(n.name, { labels: {}, ...n });
  for (const n of facts.namespaces ?? []) byName.set(n.name, n);
  const pods = (facts.pods ?? []).map((p) => p as KubernetesObject);
  return dataPlaneCensus({
    injected: pods.filter((p) => p.metadata?.labels?.[LABELS.proxyVersion]).map(podView),
    uninjected: pods.filter((p) => !p.metadata?.labels?.[LABELS.proxyVersion]).map(uninjectedPodView),
    namespace: (name) => byName.get(name),
    injection: spec?.injection ?? { repair: "Report" },
    controlPlaneVersion: controlPlaneVersion(mesh),
  });
}

function meshSpec(mesh: Mesh | undefined): MeshSpec | undefined {
  if (!mesh) return undefined;
  const checked = validateMeshSpec(mesh.spec);
  return checked.ok ? checked.value : undefined;
}

const controlPlaneVersion = (mesh: Mesh | undefined) =>
  mesh?.status?.controlPlane?.version ?? mesh?.status?.version;

export function dataPlaneChecks(facts: CheckFacts): CheckResult[] {
  const mesh = facts.meshes?.[0];
  if (!facts.pods) return [{ group, id: "proxies", status: "warn", message: "cannot read pods (forbidden)" }];
  const proxies = facts.pods.filter((p) => isLive(p) && p.metadata?.labels?.[LABELS.proxyVersion]);
  const found = census(facts, mesh);
  const owners = gapsByOwner(found);
  return [
    versionCheck(proxies, found, owners, mesh),
    missingCheck(facts, found, owners, mesh),
    anchorCheck(proxies, mesh),
  ];
}

/** What happens to these gaps: the operator's repair, or the user's hands (Report, bare pods). */
function repairHint(mesh: Mesh | undefined, owners: OwnerGaps[]): string {
  const manual = owners.filter((o) => REPORTED_ONLY.has(o.key.split("/")[0] ?? ""));
  const recreate = "bare pods and Job pods are never restarted by the operator: re-create them";
  if (manual.length === owners.length) return recreate;
  const byHand = manual.length > 0 ? `; ${recreate}` : "";
  const spec = meshSpec(mesh);
  const name = mesh?.metadata?.name ?? "default";
  if (!spec || spec.injection.repair === "Report")
    return `spec.injection.repair is Report: restart their workloads (kubectl -n NS rollout restart KIND/NAME), or set it to Restart${byHand}`;
  const r = mesh?.status?.repair;
  if (r && (r.state === "Restarting" || r.state === "Analysing"))
    return `the operator is repairing them: ${stepName(r.step)} (step ${r.step + 1} of ${r.steps}) ${r.state.toLowerCase()}, ${r.updatedWorkloads ?? 0}/${r.totalWorkloads ?? 0} workloads restarted${byHand}`;
  if (r?.state === "Halted")
    return `the operator's repair halted: ${r.message ?? "see kubectl describe mesh"} (kubectl describe mesh ${name})${byHand}`;
  return `the operator restarts their workloads in canaried steps (spec.injection.repair: Restart) once the injector serves; kubectl describe mesh ${name} says what it waits for${byHand}`;
}

function versionCheck(
  proxies: V1Pod[],
  found: DataPlaneCensus,
  owners: OwnerGaps[],
  mesh: Mesh | undefined,
): CheckResult {
  const id = "proxy-skew";
  const counts = new Map<string, number>();
  for (const p of proxies) {
    const v = p.metadata?.labels?.[LABELS.proxyVersion] ?? "";
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const summary = [...counts.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([v, n]) => `${v} ×${n}`)
    .join(", ");
  const cp = controlPlaneVersion(mesh);
  if (proxies.length === 0) return { group, id, status: "ok", message: "no proxies running" };
  if (!cp)
    return {
      group,
      id,
      status: "warn",
      message: `${counted(proxies.length, "proxy", "proxies")} (${summary}); no control-plane version to compare with`,
    };
  if (found.outOfSkew.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `${counted(proxies.length, "proxy", "proxies")} within the skew policy of control plane ${cp}: ${summary}`,
    };
  const outside = new Map<string, number>();
  for (const g of found.outOfSkew) outside.set(g.version, (outside.get(g.version) ?? 0) + 1);
  const fleet = mesh?.status?.proxies?.version;
  const fleetOutside = fleet ? proxySkew(cp, parseRevision(fleet).version) : undefined;
  return {
    group,
    id,
    status: "fail",
    message: `${counted(found.outOfSkew.length, "proxy", "proxies")} outside the skew policy of control plane ${cp}: ${[
      ...outside.entries(),
    ]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([v, k]) => `${v} ×${k}`)
      .join(", ")}`,
    hint: fleetOutside
      ? `the fleet's own proxy version is outside it too (${fleetOutside}): a restart brings it back; roll the proxies out (kubectl trellis upgrade plan --proxy-version VERSION)`
      : repairHint(
          mesh,
          owners.filter((o) => o.outOfSkew > 0),
        ),
    details: limitDetails(
      owners
        .filter((o) => o.outOfSkew > 0)
        .map((o) => {
          const versions = [
            ...new Set(found.outOfSkew.filter((g) => ownerKey(g.pod) === o.key).map((g) => g.version)),
          ];
          return `${ownerText(o.key)}: ${counted(o.outOfSkew, "proxy", "proxies")} (${versions.map((v) => proxySkew(cp, v)).join("; ")})`;
        }),
    ),
  };
}

function missingCheck(
  facts: CheckFacts,
  found: DataPlaneCensus,
  owners: OwnerGaps[],
  mesh: Mesh | undefined,
): CheckResult {
  const id = "pods-without-proxy";
  const n = facts.meshedNamespaces.length;
  if (found.missing.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `every pod that should have a proxy has one (${counted(n, "meshed namespace")})`,
    };
  const missing = owners.filter((o) => o.missing > 0);
  return {
    group,
    id,
    status: "fail",
    message: `${counted(found.missing.length, "pod")} that should carry the proxy ${found.missing.length === 1 ? "runs" : "run"} without one`,
    hint: `they started while the injector was down or before their namespace was meshed; ${repairHint(mesh, missing)}`,
    details: limitDetails(
      missing.map((o) => {
        const names = found.missing
          .filter((g) => ownerKey(g.pod) === o.key)
          .map((g) => g.pod.metadata?.name ?? "")
          .slice(0, 2);
        return `${ownerText(o.key)}: ${counted(o.missing, "pod")} (${names.join(", ")}${o.missing > names.length ? ", ..." : ""})`;
      }),
    ),
  };
}

function anchorCheck(proxies: V1Pod[], mesh: Mesh | undefined): CheckResult {
  const id = "proxy-trust";
  const anchor = mesh?.status?.trustAnchor?.fingerprint;
  if (!anchor) return { group, id, status: "warn", message: "the Mesh names no current trust anchor yet" };
  const reported = proxies.filter((p) => p.status?.phase === "Running" && reportOf(p).trusted.length > 0);
  const lacking = reported.filter((p) => !reportOf(p).trusted.includes(anchor));
  const unreported = proxies.length - reported.length;
  const note = unreported > 0 ? ` (${unreported} not reported yet)` : "";
  if (reported.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `no proxy has reported its trust bundle yet (${counted(proxies.length, "proxy", "proxies")} running)`,
    };
  if (lacking.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `${counted(reported.length, "proxy", "proxies")} report the current trust anchor${note}`,
    };
  return {
    group,
    id,
    status: "fail",
    message: `${counted(lacking.length, "proxy", "proxies")} report a trust bundle without the current trust anchor${note}`,
    hint: "their trust-bundle ConfigMap or its mount is stale: check the namespace's trellis-trust-bundle, then restart the pod",
    details: limitDetails(lacking.map(podName)),
  };
}
