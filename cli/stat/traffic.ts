// Golden metrics from the proxies' own series (request_total and response_latency_ms, see
// proxy/proxy-metrics.ts): per pod, the requests by direction, status class and TLS, and the
// latency histogram by direction; the difference of two scrapes; the sum over a workload's pods;
// and the figures a person reads — success rate, requests per second, p50/p95/p99, mTLS share.
// Pure; the same arithmetic whether the counts come from Prometheus or from the proxies.

export type Direction = "inbound" | "outbound";
export const DIRECTIONS: Direction[] = ["inbound", "outbound"];

export interface Traffic {
  /** key `${direction}|${status_class}|${tls}` → requests. */
  requests: Map<string, number>;
  /** direction → upper bound (le, Infinity for +Inf) → cumulative count. */
  latency: Map<Direction, Map<number, number>>;
}

export const emptyTraffic = (): Traffic => ({ requests: new Map(), latency: new Map() });

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text exposition (version 0.0.4) → samples. Comments and malformed lines are skipped. */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const brace = line.indexOf("{");
    const space = line.lastIndexOf(" ");
    if (space < 0) continue;
    const name = brace >= 0 && brace < space ? line.slice(0, brace) : line.slice(0, line.indexOf(" "));
    const labels: Record<string, string> = {};
    if (brace >= 0 && brace < space) {
      const body = line.slice(brace + 1, line.lastIndexOf("}"));
      for (const m of body.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[m[1] as string] = (m[2] as string).replace(/\\n/g, "\n").replace(/\\(["\\])/g, "$1");
    }
    const value = Number(line.slice(space + 1));
    if (!Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

const le = (s: string | undefined) => (s === "+Inf" ? Number.POSITIVE_INFINITY : Number(s));

/** A pod's traffic from its proxy's samples (or from Prometheus' per-pod increases). */
export function trafficOf(samples: Sample[]): Traffic {
  const t = emptyTraffic();
  for (const s of samples) {
    const dir = s.labels.direction as Direction | undefined;
    if (dir !== "inbound" && dir !== "outbound") continue;
    if (s.name === "request_total") {
      const key = `${dir}|${s.labels.status_class ?? ""}|${s.labels.tls ?? ""}`;
      t.requests.set(key, (t.requests.get(key) ?? 0) + s.value);
    } else if (s.name === "response_latency_ms_bucket") {
      const bound = le(s.labels.le);
      if (Number.isNaN(bound)) continue;
      const h = t.latency.get(dir) ?? new Map<number, number>();
      h.set(bound, (h.get(bound) ?? 0) + s.value);
      t.latency.set(dir, h);
    }
  }
  return t;
}

/** after − before, series by series; a series that went down (the proxy restarted) counts from zero. */
export function difference(after: Traffic, before: Traffic): Traffic {
  const d = emptyTraffic();
  const diff = (a: number, b: number | undefined) => (b === undefined || a < b ? a : a - b);
  for (const [k, v] of after.requests) d.requests.set(k, diff(v, before.requests.get(k)));
  for (const [dir, h] of after.latency) {
    const prev = before.latency.get(dir);
    const restarted = [...h].some(([bound, v]) => v < (prev?.get(bound) ?? 0));
    d.latency.set(
      dir,
      new Map([...h].map(([bound, v]) => [bound, restarted ? v : diff(v, prev?.get(bound))])),
    );
  }
  return d;
}

export function addTraffic(into: Traffic, t: Traffic): Traffic {
  for (const [k, v] of t.requests) into.requests.set(k, (into.requests.get(k) ?? 0) + v);
  for (const [dir, h] of t.latency) {
    const sum = into.latency.get(dir) ?? new Map<number, number>();
    for (const [bound, v] of h) sum.set(bound, (sum.get(bound) ?? 0) + v);
    into.latency.set(dir, sum);
  }
  return into;
}

/** The q-quantile of a cumulative histogram, interpolated within its bucket (Prometheus' histogram_quantile). */
export function histogramQuantile(q: number, buckets: Map<number, number>): number | undefined {
  const sorted = [...buckets].sort(([a], [b]) => a - b);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      if (bound === Number.POSITIVE_INFINITY) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket <= 0 ? bound : lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

export interface GoldenFigures {
  requests: number;
  /** Non-5xx answers / all; undefined without traffic. */
  successRate: number | undefined;
  rps: number | undefined;
  p50Ms: number | undefined;
  p95Ms: number | undefined;
  p99Ms: number | undefined;
  /** Requests over mutual TLS / all. */
  mtlsShare: number | undefined;
}

export function goldenFigures(
  t: Traffic,
  direction: Direction,
  windowSeconds: number | undefined,
): GoldenFigures {
  let requests = 0;
  let failed = 0;
  let mtls = 0;
  for (const [key, v] of t.requests) {
    const [dir, cls, tls] = key.split("|");
    if (dir !== direction) continue;
    requests += v;
    if (cls === "5xx") failed += v;
    if (tls === "mtls") mtls += v;
  }
  const h = t.latency.get(direction) ?? new Map<number, number>();
  const ratio = (n: number) => (requests > 0 ? n / requests : undefined);
  return {
    requests: Math.round(requests),
    successRate: ratio(requests - failed),
    rps: windowSeconds && windowSeconds > 0 ? requests / windowSeconds : undefined,
    p50Ms: histogramQuantile(0.5, h),
    p95Ms: histogramQuantile(0.95, h),
    p99Ms: histogramQuantile(0.99, h),
    mtlsShare: ratio(mtls),
  };
}
