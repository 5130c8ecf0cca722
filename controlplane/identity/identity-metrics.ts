// The identity service's metrics, registered on the Manager's registry (served on the admin port
// with /healthz and /readyz). Every refusal is counted under its error code, so a dashboard shows
// at once whether proxies fail on audience, expiry, identity or transport.
// Owns metric names and labels; does not own when they move.
import type { Counter, Gauge, Histogram, Registry } from "../../kube/index.ts";

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class IdentityMetrics {
  /** `result`: "Issued" or the CertifyErrorCode of the refusal. */
  readonly certify: Counter;
  readonly certifySeconds: Histogram;
  /** `result`: "Patched", "Unchanged" or the CertifyErrorCode of the refusal. */
  readonly reports: Counter;
  /** `result`: authenticated, unauthenticated, error. */
  readonly tokenReviews: Counter;
  /** `result`: hit, miss. */
  readonly tokenCacheLookups: Counter;
  readonly tokenCacheEntries: Gauge;
  /** `result`: loaded, invalid, error. */
  readonly issuerReloads: Counter;
  readonly issuerExpiry: Gauge;
  readonly servingExpiry: Gauge;

  constructor(registry: Registry) {
    this.certify = registry.counter(
      "trellis_identity_certify_total",
      "Certify requests by result: Issued, or the error code of the refusal.",
    );
    this.certifySeconds = registry.histogram(
      "trellis_identity_certify_duration_seconds",
      "Time from a certify request's headers to its answer.",
      LATENCY_BUCKETS,
    );
    this.reports = registry.counter(
      "trellis_identity_reports_total",
      "Trust reports from proxies by result: Patched (pod annotated), Unchanged, or the error code of the refusal.",
    );
    this.tokenReviews = registry.counter(
      "trellis_identity_token_reviews_total",
      "TokenReviews sent to the API server, by result.",
    );
    this.tokenCacheLookups = registry.counter(
      "trellis_identity_token_cache_lookups_total",
      "Lookups of cached TokenReview results, by result (hit, miss).",
    );
    this.tokenCacheEntries = registry.gauge(
      "trellis_identity_token_cache_entries",
      "TokenReview results held in the cache.",
    );
    this.issuerReloads = registry.counter(
      "trellis_identity_issuer_reloads_total",
      "Issuer Secret reads that changed the issuer (loaded) or failed (invalid, error).",
    );
    this.issuerExpiry = registry.gauge(
      "trellis_identity_issuer_expiration_timestamp_seconds",
      "When the issuer in use expires (Unix seconds).",
    );
    this.servingExpiry = registry.gauge(
      "trellis_identity_serving_certificate_expiration_timestamp_seconds",
      "When the identity service's own serving certificate expires (Unix seconds).",
    );
  }
}
