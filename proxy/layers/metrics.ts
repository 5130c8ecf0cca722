/**
 * Layer: counts every answered request by direction, authority, route, status class, TLS and
 * peer identity, and observes latency to the response head.
 *
 * Owns: label selection per request. Does not own metric storage (metrics.ts).
 */
import type { Direction, Layer } from "../handler.ts";
import { type ProxyMetrics, statusClass } from "../proxy-metrics.ts";

export function recordMetrics(metrics: ProxyMetrics, direction: Direction): Layer {
  return (next) => async (req) => {
    const res = await next(req);
    const route = req.route?.name ?? "default";
    const latencyMs = performance.now() - req.startedAt;
    let tls: string;
    let peer: string;
    if (direction === "inbound") {
      tls = req.conn.tls;
      peer = req.conn.peerIdentity ?? "";
    } else {
      peer = req.upstreamIdentity ?? "";
      tls = peer === "" ? "plaintext" : "mtls";
    }
    metrics.requests.inc([direction, req.authority, route, statusClass(res.status), tls, peer]);
    metrics.latency.observe([direction, req.authority, route], latencyMs);
    return res;
  };
}
