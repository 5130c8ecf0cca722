// Where `stat` gets the proxies' counts. From the Mesh's Prometheus when one is configured: the
// increase of each pod's series over the window (Prometheus must label them with `namespace` and
// `pod`, as Kubernetes service discovery's usual relabelling does; docs/upgrades.md). Otherwise
// from the proxies themselves: each meshed pod's admin endpoint (/metrics on port 4191) through
// the API server's pod proxy subresource, a few pods at a time, scraped at the start and the end
// of the window. Pods that cannot be reached are named, not fatal.
import type { V1Pod } from "@kubernetes/client-node";
import { PORTS } from "../../controlplane/injector/inject.ts";
import { ApiError } from "../../kube/index.ts";
import type { Cluster } from "../cluster.ts";
import { describeFailure } from "../cluster.ts";
import { difference, parseExposition, type Sample, type Traffic, trafficOf } from "./traffic.ts";

/** Pods scraped at once through the API server. */
export const SCRAPE_CONCURRENCY = 8;
const SCRAPE_TIMEOUT_MS = 5000;

export interface PodTraffic {
  /** namespace/name */
  pod: string;
  traffic: Traffic;
}

export interface SourceResult {
  pods: PodTraffic[];
  unreachable: Array<{ pod: string; reason: string }>;
}

const key = (p: V1Pod) => `${p.metadata?.namespace}/${p.metadata?.name}`;

async function scrapeOnce(cluster: Cluster, pods: V1Pod[]): Promise<Map<string, Traffic | string>> {
  const out = new Map<string, Traffic | string>();
  let next = 0;
  const worker = async () => {
    while (next < pods.length) {
      const pod = pods[next++] as V1Pod;
      const path = `/api/v1/namespaces/${encodeURIComponent(pod.metadata?.namespace ?? "")}/pods/${encodeURIComponent(pod.metadata?.name ?? "")}:${PORTS.admin}/proxy/metrics`;
      try {
        const text = await cluster.client.requestText({
          method: "GET",
          path,
          accept: "text/plain",
          timeoutMs: SCRAPE_TIMEOUT_MS,
        });
        out.set(key(pod), trafficOf(parseExposition(text)));
      } catch (err) {
        out.set(key(pod), scrapeFailure(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCRAPE_CONCURRENCY, pods.length) }, worker));
  return out;
}

/** Why a pod's metrics could not be read: the API server could not reach its admin port, or said no. */
function scrapeFailure(err: unknown): string {
  if (err instanceof ApiError && (err.statusCode === 502 || err.statusCode === 503)) {
    const cause = err.message.split(": ").slice(-2).join(": ");
    return `no answer on the proxy's admin port ${PORTS.admin} (${cause}); is the proxy running?`;
  }
  return describeFailure(err, undefined);
}

/** Scrapes at the start and, after `windowMs`, at the end; windowMs 0: counts since each proxy started. */
export async function scrapeProxies(
  cluster: Cluster,
  pods: V1Pod[],
  windowMs: number,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<SourceResult> {
  const running = pods.filter((p) => p.status?.phase === "Running" && p.status.podIP);
  const unreachable = pods
    .filter((p) => !running.includes(p))
    .map((p) => ({ pod: key(p), reason: `not running (${p.status?.phase ?? "no status"})` }));
  const first = windowMs > 0 ? await scrapeOnce(cluster, running) : new Map<string, Traffic | string>();
  if (windowMs > 0) await sleep(windowMs);
  const last = await scrapeOnce(cluster, running);
  const result: SourceResult = { pods: [], unreachable };
  for (const p of running) {
    const k = key(p);
    const a = last.get(k);
    const b = first.get(k);
    if (typeof a === "string" || a === undefined) unreachable.push({ pod: k, reason: a ?? "no answer" });
    else if (typeof b === "string") unreachable.push({ pod: k, reason: b });
    else result.pods.push({ pod: k, traffic: b ? difference(a, b) : a });
  }
  return result;
}

/** An in-cluster Service URL (http://name.ns.svc[.cluster.local]:port) is reached through the API server. */
export function serviceProxyPath(url: URL): string | undefined {
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.[a-z0-9.-]+)?$/.exec(url.hostname);
  if (!m) return undefined;
  const scheme = url.protocol === "https:" ? "https:" : "";
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return `/api/v1/namespaces/${m[2]}/services/${scheme}${m[1]}:${port}/proxy`;
}

async function promQuery(cluster: Cluster, base: string, query: string): Promise<Sample[]> {
  const url = new URL(base);
  const path = `${url.pathname.replace(/\/$/, "")}/api/v1/query`;
  const proxied = serviceProxyPath(url);
  let body: string;
  if (proxied) {
    body = await cluster.client.requestText({ method: "GET", path: `${proxied}${path}`, query: { query } });
  } else {
    const target = new URL(path, url);
    target.searchParams.set("query", query);
    const res = await fetch(target, { signal: AbortSignal.timeout(10_000) });
    body = await res.text();
    if (!res.ok) throw new Error(`Prometheus at ${base} answered ${res.status}: ${body.slice(0, 200)}`);
  }
  const parsed = JSON.parse(body) as {
    status?: string;
    error?: string;
    data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> };
  };
  if (parsed.status !== "success")
    throw new Error(`Prometheus at ${base}: ${parsed.error ?? "query failed"}`);
  return (parsed.data?.result ?? []).map((r) => ({
    name: r.metric.__name__ ?? "",
    labels: r.metric,
    value: Number(r.value[1]),
  }));
}

/** Each pod's increase over the window, from Prometheus. */
export async function queryPrometheus(
  cluster: Cluster,
  url: string,
  pods: V1Pod[],
  window: string,
): Promise<SourceResult> {
  const namespaces = [...new Set(pods.map((p) => p.metadata?.namespace ?? ""))].sort();
  const sel = `namespace=~"${namespaces.join("|")}"`;
  const requests = await promQuery(
    cluster,
    url,
    `sum by (namespace, pod, direction, status_class, tls) (increase(request_total{${sel}}[${window}]))`,
  );
  const latency = await promQuery(
    cluster,
    url,
    `sum by (namespace, pod, direction, le) (increase(response_latency_ms_bucket{${sel}}[${window}]))`,
  );
  const byPod = new Map<string, Sample[]>();
  const add = (name: string, s: Sample) => {
    const k = `${s.labels.namespace}/${s.labels.pod}`;
    byPod.set(k, [...(byPod.get(k) ?? []), { ...s, name }]);
  };
  for (const s of requests) add("request_total", s);
  for (const s of latency) add("response_latency_ms_bucket", s);
  const wanted = new Set(pods.map(key));
  return {
    pods: [...byPod]
      .filter(([k]) => wanted.has(k))
      .map(([pod, samples]) => ({ pod, traffic: trafficOf(samples) })),
    unreachable: [],
  };
}
