// `check --proxies`: the data plane of the first Mesh — proxy versions and the skew policy, pods
// of meshed namespaces that run without a proxy, and proxies whose reported trust bundle lacks
// the current anchor. Whether a pod should have a proxy is the injector's own decision
// (decideInjection), and whether a proxy version is allowed the operator's (proxySkew): the same
// functions, not a second copy.
import type { V1Pod } from "@kubernetes/client-node";
import { LABELS, type Mesh } from "../../api/index.ts";
import { matchesLabelSelector } from "../../kube/index.ts";
import { reportOf } from "../../operator/mesh/mesh-identity.ts";
import { proxySkew } from "../../operator/mesh/version-skew.ts";
import { ownerWorkload } from "../../operator/rollout/workloads.ts";
import { injectionDecision } from "../injection-decision.ts";
import { plural } from "../output.ts";
import type { CheckFacts } from "./check-facts.ts";
import { type CheckResult, limitDetails } from "./checks.ts";

const group = "data plane";

const podName = (p: V1Pod) => `${p.metadata?.namespace}/${p.metadata?.name}`;
const isLive = (p: V1Pod) =>
  !p.metadata?.deletionTimestamp && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed";

/** The owner a person restarts: the Deployment, StatefulSet or DaemonSet, else the pod itself. */
function ownerText(p: V1Pod): string {
  const w = ownerWorkload(p as Parameters<typeof ownerWorkload>[0]);
  if (w) return `${w.kind.toLowerCase()}/${w.name}`;
  const o = p.metadata?.ownerReferences?.find((r) => r.controller);
  return o ? `${o.kind.toLowerCase()}/${o.name}` : "bare pod";
}

/** Pods of meshed namespaces that the injector would mesh but that run without a proxy. */
export function podsWithoutProxy(facts: CheckFacts, mesh: Mesh | undefined): V1Pod[] {
  const annotations = new Map(facts.meshedNamespaces.map((n) => [n.name, n.annotations]));
  const podSelector = mesh?.spec?.injection?.podSelector;
  return (facts.pods ?? []).filter((p) => {
    if (!isLive(p) || p.metadata?.labels?.[LABELS.proxyVersion]) return false;
    const ns = annotations.get(p.metadata?.namespace ?? "");
    if (!ns) return false;
    if (podSelector && !matchesLabelSelector(podSelector, p.metadata?.labels)) return false;
    return injectionDecision(p, ns).inject;
  });
}

export function dataPlaneChecks(facts: CheckFacts): CheckResult[] {
  const mesh = facts.meshes?.[0];
  if (!facts.pods) return [{ group, id: "proxies", status: "warn", message: "cannot read pods (forbidden)" }];
  const proxies = facts.pods.filter((p) => isLive(p) && p.metadata?.labels?.[LABELS.proxyVersion]);
  return [versionCheck(proxies, mesh), missingCheck(facts, mesh), anchorCheck(proxies, mesh)];
}

function versionCheck(proxies: V1Pod[], mesh: Mesh | undefined): CheckResult {
  const id = "proxy-skew";
  const counts = new Map<string, number>();
  for (const p of proxies) {
    const v = p.metadata?.labels?.[LABELS.proxyVersion] ?? "";
    counts.set(v, (counts.get(v) ?? 0) + 1);
  }
  const byVersion = [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
  const summary = byVersion.map(([v, n]) => `${v} ×${n}`).join(", ");
  const cp = mesh?.status?.version;
  if (proxies.length === 0) return { group, id, status: "ok", message: "no proxies running" };
  if (!cp)
    return {
      group,
      id,
      status: "warn",
      message: `${plural(proxies.length, "proxy", "proxies")} (${summary}); no control-plane version to compare with`,
    };
  const outside = byVersion.filter(([v]) => proxySkew(cp, v) !== undefined);
  if (outside.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `${plural(proxies.length, "proxy", "proxies")} within the skew policy of control plane ${cp}: ${summary}`,
    };
  const n = outside.reduce((s, [, k]) => s + k, 0);
  const pods = proxies.filter((p) => outside.some(([v]) => v === p.metadata?.labels?.[LABELS.proxyVersion]));
  return {
    group,
    id,
    status: "fail",
    message: `${plural(n, "proxy", "proxies")} outside the skew policy of control plane ${cp}: ${outside.map(([v, k]) => `${v} ×${k}`).join(", ")}`,
    hint: "restart their workloads onto the mesh's proxy version (kubectl -n NS rollout restart KIND/NAME)",
    details: limitDetails(
      pods.map(
        (p) =>
          `${podName(p)} (${ownerText(p)}, ${proxySkew(cp, p.metadata?.labels?.[LABELS.proxyVersion] ?? "")})`,
      ),
    ),
  };
}

function missingCheck(facts: CheckFacts, mesh: Mesh | undefined): CheckResult {
  const id = "pods-without-proxy";
  const missing = podsWithoutProxy(facts, mesh);
  const n = facts.meshedNamespaces.length;
  if (missing.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `every pod that should have a proxy has one (${plural(n, "meshed namespace")})`,
    };
  return {
    group,
    id,
    status: "fail",
    message: `${plural(missing.length, "pod")} in meshed namespaces ${missing.length === 1 ? "runs" : "run"} without a proxy`,
    hint: "they started while the injector was down or before their namespace was meshed: restart their workloads (kubectl -n NS rollout restart KIND/NAME); bare pods must be re-created",
    details: limitDetails(missing.map((p) => `${podName(p)} (${ownerText(p)})`)),
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
      message: `no proxy has reported its trust bundle yet (${plural(proxies.length, "proxy", "proxies")} running)`,
    };
  if (lacking.length === 0)
    return {
      group,
      id,
      status: "ok",
      message: `${plural(reported.length, "proxy", "proxies")} report the current trust anchor${note}`,
    };
  return {
    group,
    id,
    status: "fail",
    message: `${plural(lacking.length, "proxy", "proxies")} report a trust bundle without the current trust anchor${note}`,
    hint: "their trust-bundle ConfigMap or its mount is stale: check the namespace's trellis-trust-bundle, then restart the pod",
    details: limitDetails(lacking.map(podName)),
  };
}
