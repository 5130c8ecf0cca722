/**
 * Layer: counts every answered request by direction, authority, route, status class, TLS and
 * peer identity, and observes latency to the response head.
 *
 * Owns: label selection per request and a small cache of series handles, so the hot path
 * is one string key and one map lookup. Does not own metric storage (metrics.ts).
 */
import type { Direction, Layer, ProxyRequest } from "../handler.ts";
import type { HistogramData } from "../metrics.ts";
import { type ProxyMetrics, statusClass } from "../proxy-metrics.ts";

interface Series {
  labels: string[];
  latency: HistogramData;
  byClass: Map<string, { v: number }>;
}

const maxCached = 4096;

export function recordMetrics(metrics: ProxyMetrics, direction: Direction): Layer {
  const cache = new Map<string, Series>();

  const seriesFor = (req: ProxyRequest): Series => {
    const route = req.route?.name ?? "default";
    let tls: string;
    let peer: string;
    if (direction === "inbound") {
      tls = req.conn.tls;
      peer = req.conn.peerIdentity ?? "";
    } else {
      peer = req.upstreamIdentity ?? "";
      // "none": sent without TLS because the destination is not meshed (or not known).
      // "no_endpoint": sent nowhere, the proxy answered itself (no endpoints, no discovery
      // answer, a loop); for gRPC that answer is an HTTP 200 carrying grpc-status, which under
      // "none" read as a request a server had answered in plaintext.
      tls = req.endpoint === undefined ? "no_endpoint" : peer === "" ? "none" : "mtls";
    }
    const key = `${req.authority}\u0000${route}\u0000${tls}\u0000${peer}`;
    let s = cache.get(key);
    if (s === undefined) {
      if (cache.size >= maxCached) cache.clear();
      s = {
        labels: [direction, req.authority, route, "", tls, peer],
        latency: metrics.latency.handle([direction, req.authority, route]),
        byClass: new Map(),
      };
      cache.set(key, s);
    }
    return s;
  };

  return (next) => async (req) => {
    const res = await next(req);
    const s = seriesFor(req);
    const cls = statusClass(res.status);
    let counter = s.byClass.get(cls);
    if (counter === undefined) {
      const labels = [...s.labels];
      labels[3] = cls;
      counter = metrics.requests.handle(labels);
      s.byClass.set(cls, counter);
    }
    counter.v++;
    metrics.latency.record(s.latency, performance.now() - req.startedAt);
    return res;
  };
}
