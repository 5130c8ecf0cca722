// Rollout analysis: is the new proxy version healthy on the workloads that run it? From the
// cluster: their pods must not crash-loop (certain failures, which fail a step at once, are the
// plan's: pod-failures.ts). From Prometheus, when the Mesh names one: success
// rate (non-5xx answers of the inbound proxies) of the new version against spec's minimum, and
// its p99 latency against the not-yet-upgraded workloads' p99, over the analysis interval.
// Prometheus must attach the pod label trellis.dev/proxy-version as `proxy_version` to the
// proxies' series (docs/rollouts.md has the scrape config).
import { counted, type MeshSpec } from "../../api/index.ts";
import type { AnalysisVerdict } from "./rollout-plan.ts";
import type { WorkloadView } from "./workloads.ts";

/** Container restarts of new-version pods (all workloads together) that count as crash-looping. */
export const MAX_RESTARTS = 3;

export interface PrometheusFigures {
  successRate: number | undefined;
  p99Ms: number | undefined;
  baselineP99Ms: number | undefined;
}

export function podVerdict(upgraded: WorkloadView[], version: string): AnalysisVerdict {
  let restarts = 0;
  let pods = 0;
  let ready = 0;
  for (const w of upgraded) {
    const at = w.pods.get(version);
    restarts += at?.restarts ?? 0;
    pods += at?.total ?? 0;
    ready += at?.ready ?? 0;
  }
  if (restarts >= MAX_RESTARTS)
    return {
      healthy: false,
      detail: `${counted(restarts, "container restart")} in ${counted(pods, "pod")} on proxy ${version} (crash-looping)`,
    };
  return { healthy: true, detail: `${ready}/${pods} pods on ${version} ready` };
}

export function metricsVerdict(figures: PrometheusFigures | undefined, spec: MeshSpec): AnalysisVerdict {
  if (!figures) return { healthy: true, detail: "no Prometheus configured" };
  const { successRate, p99Ms, baselineP99Ms } = figures;
  const min = spec.upgrade.analysis.minSuccessRate;
  if (successRate !== undefined && successRate < min) {
    return { healthy: false, detail: `success rate ${successRate.toFixed(4)} < ${min}` };
  }
  const ratio = spec.upgrade.analysis.maxLatencyP99Ratio;
  if (
    p99Ms !== undefined &&
    baselineP99Ms !== undefined &&
    baselineP99Ms > 0 &&
    p99Ms > ratio * baselineP99Ms
  ) {
    return {
      healthy: false,
      detail: `p99 ${p99Ms.toFixed(1)} ms > ${ratio} × baseline ${baselineP99Ms.toFixed(1)} ms`,
    };
  }
  const parts = [
    successRate === undefined ? "no traffic yet" : `success rate ${successRate.toFixed(4)}`,
    p99Ms === undefined
      ? ""
      : `p99 ${p99Ms.toFixed(1)} ms${baselineP99Ms === undefined ? "" : ` (baseline ${baselineP99Ms.toFixed(1)} ms)`}`,
  ];
  return { healthy: true, detail: parts.filter(Boolean).join(", ") };
}

export function combine(...verdicts: AnalysisVerdict[]): AnalysisVerdict {
  const bad = verdicts.find((v) => !v.healthy);
  return bad ?? { healthy: true, detail: verdicts.map((v) => v.detail).join("; ") };
}

/** Queries one instant vector and returns its single value, or undefined when there is no data. */
async function instant(prometheusUrl: string, query: string, timeoutMs: number): Promise<number | undefined> {
  const url = new URL("/api/v1/query", prometheusUrl);
  url.searchParams.set("query", query);
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`Prometheus answered ${res.status} to ${query}`);
  const body = (await res.json()) as { data?: { result?: Array<{ value?: [number, string] }> } };
  const raw = body.data?.result?.[0]?.value?.[1];
  const value = raw === undefined ? undefined : Number(raw);
  return value === undefined || Number.isNaN(value) ? undefined : value;
}

export async function queryFigures(opts: {
  prometheusUrl: string;
  version: string;
  baselineVersion: string;
  window: string;
  timeoutMs?: number;
}): Promise<PrometheusFigures> {
  const { prometheusUrl, version, baselineVersion, window } = opts;
  const t = opts.timeoutMs ?? 5000;
  const sel = (v: string) => `direction="inbound",proxy_version="${v}"`;
  const p99 = (v: string) =>
    `histogram_quantile(0.99, sum by (le) (rate(response_latency_ms_bucket{${sel(v)}}[${window}])))`;
  const [successRate, p99Ms, baselineP99Ms] = await Promise.all([
    instant(
      prometheusUrl,
      `sum(rate(request_total{${sel(version)},status_class!="5xx"}[${window}])) / sum(rate(request_total{${sel(version)}}[${window}]))`,
      t,
    ),
    instant(prometheusUrl, p99(version), t),
    instant(prometheusUrl, p99(baselineVersion), t),
  ]);
  return { successRate, p99Ms, baselineP99Ms };
}
