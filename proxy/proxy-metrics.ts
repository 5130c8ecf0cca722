/**
 * The proxy's metric families, named and labelled like linkerd2-proxy's where they overlap,
 * created once per process and passed to the layers and listeners that update them.
 *
 * Owns: metric names, labels and buckets. Does not own storage or exposition (metrics.ts).
 */
import { type Counter, type Gauge, type Histogram, Registry, type SampledGauge } from "./metrics.ts";

const latencyBucketsMs = [1, 2, 3, 4, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000, 30000];

export interface ProxyMetrics {
  registry: Registry;
  requests: Counter;
  latency: Histogram;
  retries: Counter;
  retriesSkipped: Counter;
  tcpOpen: Counter;
  tcpOpenConnections: Gauge;
  tcpForwarded: Counter;
  tcpRejected: Counter;
  tlsHandshakeFailures: Counter;
  protocolErrors: Counter;
  identityRenewals: Counter;
  identityLeafExpiry: Gauge;
  identityLeafTimeLeft: SampledGauge;
  identityRefreshFailures: Gauge;
  expiredCertificates: Counter;
  trustBundleReloads: Counter;
  trustBundleAnchors: Gauge;
  trustBundleRejectedBlocks: Gauge;
  discoveryUpdates: Counter;
  discoveryConnected: SampledGauge;
  discoveryUpdateAge: SampledGauge;
  discoveryReconnects: Counter;
  discoveryUnresolved: Gauge;
  discoveryFailFast: Counter;
  processErrors: Counter;
  memoryReleases: Counter;
}

export function createProxyMetrics(): ProxyMetrics {
  const r = new Registry();
  return {
    registry: r,
    requests: r.counter(
      "request_total",
      "Requests answered, by route, authority, status class, TLS and peer.",
      ["direction", "authority", "route", "status_class", "tls", "peer_identity"],
    ),
    latency: r.histogram(
      "response_latency_ms",
      "Time from request head to response head, in milliseconds.",
      ["direction", "authority", "route"],
      latencyBucketsMs,
    ),
    retries: r.counter("retry_total", "Retries sent.", ["authority", "route"]),
    retriesSkipped: r.counter("retry_skipped_total", "Retries not sent, by reason.", [
      "authority",
      "route",
      "reason",
    ]),
    tcpOpen: r.counter("tcp_open_total", "Connections accepted, by TLS status and peer identity.", [
      "direction",
      "tls",
      "peer_identity",
    ]),
    tcpOpenConnections: r.gauge("tcp_open_connections", "Connections open now.", ["direction"]),
    tcpForwarded: r.counter(
      "tcp_forward_total",
      'Opaque TCP connections relayed: outbound to the destination, by TLS ("mtls", or "none" to an unmeshed or unknown destination), inbound to the application, by the client\'s TLS ("mtls" or "plaintext"); and the peer identity.',
      ["direction", "tls", "peer_identity"],
    ),
    tcpRejected: r.counter("tcp_rejected_total", "Connections refused, by reason.", ["direction", "reason"]),
    tlsHandshakeFailures: r.counter("tls_handshake_failures_total", "Failed TLS handshakes.", [
      "direction",
      "side",
    ]),
    protocolErrors: r.counter("http_protocol_errors_total", "Malformed or oversized client input.", [
      "direction",
      "reason",
    ]),
    identityRenewals: r.counter("identity_cert_refresh_total", "Leaf certificate requests, by result.", [
      "result",
    ]),
    identityLeafExpiry: r.gauge(
      "identity_cert_expiration_timestamp_seconds",
      "Expiry of the current leaf certificate.",
      [],
    ),
    identityLeafTimeLeft: r.sampledGauge(
      "identity_cert_seconds_to_expiry",
      "Seconds until the current leaf certificate expires (negative once it has).",
    ),
    identityRefreshFailures: r.gauge(
      "identity_cert_refresh_consecutive_failures",
      "Leaf certificate requests failed in a row since the last success.",
      [],
    ),
    expiredCertificates: r.counter(
      "tls_expired_certificate_total",
      "mTLS connections not opened or refused because a certificate had expired (local: this proxy's leaf; peer: a resumed session's).",
      ["direction", "certificate"],
    ),
    trustBundleReloads: r.counter("trust_bundle_reload_total", "Trust bundle reloads, by result.", [
      "result",
    ]),
    trustBundleAnchors: r.gauge("trust_bundle_anchors", "Trust anchors currently trusted.", []),
    trustBundleRejectedBlocks: r.gauge(
      "trust_bundle_rejected_blocks",
      "Blocks of the trust bundle file in use that are not usable anchors and were dropped.",
      [],
    ),
    discoveryUpdates: r.counter("discovery_update_total", "Discovery updates, by result.", ["result"]),
    discoveryConnected: r.sampledGauge(
      "discovery_connected",
      "1 while the connection to the destination service is up and answers PINGs in time; absent while nothing is watched.",
    ),
    discoveryUpdateAge: r.sampledGauge(
      "discovery_update_age_seconds",
      "Seconds since the last discovery update was applied.",
    ),
    discoveryReconnects: r.counter(
      "discovery_reconnects_total",
      "Connections or watches to the destination service given up and retried, by reason.",
      ["reason"],
    ),
    discoveryUnresolved: r.gauge(
      "discovery_unresolved_services",
      "Watched authorities with no answer yet after the discovery timeout (answered at once with 503).",
      [],
    ),
    discoveryFailFast: r.counter(
      "discovery_fail_fast_total",
      "Requests answered at once with 503 because their authority could not be resolved.",
      [],
    ),
    processErrors: r.counter("process_errors_total", "Errors caught at the process boundary.", ["kind"]),
    memoryReleases: r.counter(
      "process_memory_release_total",
      "Runs returning the allocator's free pages to the kernel, by result: released, nothing, busy (skipped).",
      ["result"],
    ),
  };
}

export function statusClass(status: number): string {
  if (status < 200) return "1xx";
  if (status < 300) return "2xx";
  if (status < 400) return "3xx";
  if (status < 500) return "4xx";
  return "5xx";
}
