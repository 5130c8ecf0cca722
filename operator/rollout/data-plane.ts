// The data plane's gaps: pods that should carry the proxy and run without one (created while the
// injector was down, before their namespace was meshed, or admitted on a connection the API
// server lost — the webhook fails open), and proxies whose version is outside the skew policy of
// the control plane that serves them. "Should carry the proxy" is the injector's own rule
// (api/injection-intent.ts) plus what its webhook configuration selects (the namespace and pod
// selectors of spec.injection, never kube-system or Trellis's own namespace) and what it refuses
// (hostNetwork, a container named like the proxy). Gaps are grouped by the workload that owns
// them; what is done about them is the repair plan's (repair-plan.ts). Pure.
import type { KubernetesObject } from "@kubernetes/client-node";
import { counted, injectionIntent, LABELS, type MeshSpec, NEVER_MESHED_NAMESPACES } from "../../api/index.ts";
import { matchesLabelSelector } from "../../kube/index.ts";
import { proxySkew } from "../mesh/version-skew.ts";
import type { PodView } from "../resources.ts";
import { isFinished, ownerKey } from "./workloads.ts";

/**
 * Container names the injector adds (controlplane/injector: the proxy, trellis-init, or in CNI
 * capture mode trellis-validate): a pod that already uses one is refused, left without a proxy.
 */
const INJECTED_CONTAINERS = ["trellis-proxy", "trellis-init", "trellis-validate"];

export interface NamespaceView {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export function namespaceView(ns: KubernetesObject): NamespaceView {
  return {
    name: ns.metadata?.name ?? "",
    labels: ns.metadata?.labels ?? {},
    annotations: ns.metadata?.annotations ?? {},
  };
}

export type Meshability = { meshed: true } | { meshed: false; reason: string };

/** Would the injector mesh this pod if it were created now? */
export function meantToBeMeshed(
  pod: PodView,
  ns: NamespaceView | undefined,
  injection: MeshSpec["injection"],
): Meshability {
  if (!ns) return { meshed: false, reason: "its namespace is not known" };
  if (NEVER_MESHED_NAMESPACES.includes(ns.name)) return { meshed: false, reason: "a system namespace" };
  if (!matchesLabelSelector(injection.namespaceSelector, ns.labels, { absent: "all" }))
    return { meshed: false, reason: "its namespace is outside spec.injection.namespaceSelector" };
  if (!matchesLabelSelector(injection.podSelector, pod.metadata?.labels, { absent: "all" }))
    return { meshed: false, reason: "outside spec.injection.podSelector" };
  const intent = injectionIntent(pod.metadata?.annotations, ns.annotations);
  if (!intent.meshed) return intent;
  if (pod.spec?.hostNetwork) return { meshed: false, reason: "hostNetwork pods are never meshed" };
  const taken = pod.spec?.containerNames?.find((n) => INJECTED_CONTAINERS.includes(n));
  if (taken) return { meshed: false, reason: `a container is named ${taken}, as the injector's own` };
  return { meshed: true };
}

export interface PodGap {
  pod: PodView;
  /** The proxy version it runs; "" for a pod without a proxy. */
  version: string;
}

export interface DataPlaneCensus {
  missing: PodGap[];
  outOfSkew: PodGap[];
}

export interface CensusInput {
  injected: PodView[];
  uninjected: PodView[];
  namespace: (name: string) => NamespaceView | undefined;
  injection: MeshSpec["injection"];
  /** The version of the active control-plane revision; no skew is judged without one. */
  controlPlaneVersion: string | undefined;
}

const running = (p: PodView) => !p.metadata?.deletionTimestamp && !isFinished(p);

export function dataPlaneCensus(input: CensusInput): DataPlaneCensus {
  const missing: PodGap[] = [];
  for (const pod of input.uninjected) {
    if (!running(pod)) continue;
    const ns = input.namespace(pod.metadata?.namespace ?? "");
    if (meantToBeMeshed(pod, ns, input.injection).meshed) missing.push({ pod, version: "" });
  }
  const outOfSkew: PodGap[] = [];
  const cp = input.controlPlaneVersion;
  if (cp)
    for (const pod of input.injected) {
      const version = pod.metadata?.labels?.[LABELS.proxyVersion];
      if (version && running(pod) && proxySkew(cp, version) !== undefined) outOfSkew.push({ pod, version });
    }
  return { missing, outOfSkew };
}

export interface OwnerGaps {
  /** Kind/namespace/name of the owning workload, or of a Job, or Pod/… for a bare pod. */
  key: string;
  missing: number;
  outOfSkew: number;
}

/** Gaps per owner, sorted by key: the first few name the workloads in status and conditions. */
export function gapsByOwner(census: DataPlaneCensus): OwnerGaps[] {
  const byKey = new Map<string, OwnerGaps>();
  const add = (gap: PodGap, field: "missing" | "outOfSkew") => {
    const key = ownerKey(gap.pod);
    const g = byKey.get(key) ?? { key, missing: 0, outOfSkew: 0 };
    g[field]++;
    byKey.set(key, g);
  };
  for (const g of census.missing) add(g, "missing");
  for (const g of census.outOfSkew) add(g, "outOfSkew");
  return [...byKey.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * "2 pods without a proxy, 1 proxy outside the skew policy: Deployment shop/web (2), Pod
 * shop/debug (1)", for the Warning Event and the DataPlaneIncomplete condition alike. `owners`
 * may be the first ones only (status.proxies.incomplete is capped): `complete: false` then says
 * "and more" rather than a count it does not know.
 */
export function describeGaps(
  owners: readonly OwnerGaps[],
  total: { missing: number; outOfSkew: number },
  { max = 3, complete = true }: { max?: number; complete?: boolean } = {},
): string {
  const parts = [
    total.missing > 0 ? `${counted(total.missing, "pod")} without a proxy` : "",
    total.outOfSkew > 0 ? `${counted(total.outOfSkew, "proxy", "proxies")} outside the skew policy` : "",
  ].filter(Boolean);
  const names = owners.slice(0, max).map((o) => {
    const [kind, ...rest] = o.key.split("/");
    return `${kind} ${rest.join("/")} (${o.missing + o.outOfSkew})`;
  });
  const more = owners.length > max ? `, and ${complete ? `${owners.length - max} ` : ""}more` : "";
  return `${parts.join(", ")}: ${names.join(", ")}${more}`;
}
