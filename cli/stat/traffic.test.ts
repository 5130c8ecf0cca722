import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createProxyMetrics } from "../../proxy/proxy-metrics.ts";
import { difference, goldenFigures, histogramQuantile, parseExposition, trafficOf } from "./traffic.ts";

/** The proxy's own registry, filled as its metrics layer fills it, rendered as /metrics serves it. */
function exposition(
  requests: Array<{ status: string; tls: string; ms: number; direction?: string }>,
): string {
  const m = createProxyMetrics();
  for (const r of requests) {
    const dir = r.direction ?? "inbound";
    m.requests.inc([dir, "server:8080", "default", r.status, r.tls, ""]);
    m.latency.observe([dir, "server:8080", "default"], r.ms);
  }
  return m.registry.render();
}

describe("golden metrics from the proxy's series", () => {
  it("counts requests, success rate, mTLS share and quantiles from the proxy's own exposition", () => {
    const reqs = [
      ...Array.from({ length: 90 }, (_, i) => ({ status: "2xx", tls: "mtls", ms: 1 + (i % 4) })),
      ...Array.from({ length: 10 }, () => ({ status: "5xx", tls: "plaintext", ms: 40 })),
    ];
    const t = trafficOf(parseExposition(exposition(reqs)));
    const f = goldenFigures(t, "inbound", 10);
    assert.equal(f.requests, 100);
    assert.equal(f.successRate, 0.9);
    assert.equal(f.mtlsShare, 0.9);
    assert.equal(f.rps, 10);
    assert.ok((f.p50Ms ?? 0) > 1 && (f.p50Ms ?? 0) <= 4, String(f.p50Ms));
    assert.ok((f.p99Ms ?? 0) > 30 && (f.p99Ms ?? 0) <= 50, String(f.p99Ms));
    assert.equal(goldenFigures(t, "outbound", 10).requests, 0);
    assert.equal(goldenFigures(t, "outbound", 10).successRate, undefined);
  });

  it("takes the difference of two scrapes, and counts from zero after a proxy restart", () => {
    const before = trafficOf(parseExposition(exposition([{ status: "2xx", tls: "mtls", ms: 2 }])));
    const after = trafficOf(
      parseExposition(
        exposition([
          ...Array.from({ length: 4 }, () => ({ status: "2xx", tls: "mtls", ms: 2 })),
          { status: "5xx", tls: "mtls", ms: 2 },
        ]),
      ),
    );
    assert.equal(goldenFigures(difference(after, before), "inbound", 1).requests, 4);
    assert.equal(
      goldenFigures(difference(before, after), "inbound", 1).requests,
      1,
      "restarted: the new counts",
    );
  });

  it("interpolates quantiles within a bucket, as histogram_quantile does", () => {
    const h = new Map([
      [10, 50],
      [20, 100],
      [Number.POSITIVE_INFINITY, 100],
    ]);
    assert.equal(histogramQuantile(0.5, h), 10);
    assert.equal(histogramQuantile(0.75, h), 15);
    assert.equal(histogramQuantile(0.25, h), 5);
    assert.equal(histogramQuantile(0.5, new Map()), undefined);
  });
});
