// Who sent this token: asks the API server with a TokenReview (spec.audiences = the identity
// audience) and accepts only an authenticated ServiceAccount. Results are cached until the token's
// own expiry (optionally less), keyed by a SHA-256 of the token, in a bounded LRU; concurrent
// requests with one token share one TokenReview; at most `maxPending` TokenReviews are in flight
// and the rest are refused with TooManyRequests, so a restarting fleet cannot flood the API server.
// Tokens are never logged, stored in clear, or echoed.
// The answer names the ServiceAccount and, for a pod-bound token, the pod (name and uid) as the
// API server vouches for it in user.extra; never as the token's unverified claims say.
// Owns authentication; does not own what the authenticated account may ask for (certify.ts).
import { hash } from "node:crypto";
import { checkClaims, readClaims } from "./bearer-token.ts";
import type { ServiceAccountRef } from "./certify.ts";
import { CertifyError } from "./certify-errors.ts";
import type { IdentityMetrics } from "./identity-metrics.ts";
import { ExpiringLru } from "./token-cache.ts";

export interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string; uid?: string; extra?: Record<string, string[] | undefined> };
  audiences?: string[];
  error?: string;
}

/** Sends one TokenReview and returns its status; rejects when the API server cannot be asked. */
export type ReviewToken = (token: string, audiences: string[]) => Promise<TokenReviewStatus>;

export interface TokenReviewerOptions {
  review: ReviewToken;
  audience: string;
  cacheEntries: number;
  maxPending: number;
  /** Upper bound on how long a result is trusted; undefined: until the token expires. */
  maxCacheMs?: number | undefined;
  metrics: Pick<IdentityMetrics, "tokenReviews" | "tokenCacheLookups" | "tokenCacheEntries">;
  now?: () => number;
}

const SERVICE_ACCOUNT_USER = /^system:serviceaccount:([a-z0-9.-]+):([a-z0-9.-]+)$/;
/** Set by the API server on tokens bound to a pod (TokenRequest boundObjectRef, projected volumes). */
export const POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name";
export const POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid";

/** The ServiceAccount a TokenReview authenticated, or the refusal. */
export function accountOf(status: TokenReviewStatus, audience: string): ServiceAccountRef {
  if (status.authenticated !== true) {
    const why = status.error ? `: ${status.error.slice(0, 200)}` : "";
    throw new CertifyError("InvalidToken", `the API server did not authenticate the token${why}`);
  }
  // An authenticated answer without audiences means the token is valid for the API server's own
  // audience (authentication.k8s.io/v1 TokenReviewStatus.audiences), not necessarily for ours:
  // the answer must name ours, or the authenticator that took the token was not audience-aware.
  if (!status.audiences?.includes(audience)) {
    throw new CertifyError(
      "WrongAudience",
      `the API server did not confirm the audience ${audience} (it authenticated the token for ${status.audiences?.join(", ") || "its own audience"})`,
    );
  }
  const match = SERVICE_ACCOUNT_USER.exec(status.user?.username ?? "");
  if (!match?.[1] || !match[2]) {
    throw new CertifyError(
      "NotServiceAccount",
      `the token belongs to ${status.user?.username ?? "an unnamed user"}, not to a ServiceAccount`,
    );
  }
  const podName = status.user?.extra?.[POD_NAME_EXTRA]?.[0];
  const podUid = status.user?.extra?.[POD_UID_EXTRA]?.[0];
  const pod = podName && podUid ? { name: podName, uid: podUid } : undefined;
  return { namespace: match[1], name: match[2], ...(pod ? { pod } : {}) };
}

export class TokenReviewer {
  private readonly cache: ExpiringLru<ServiceAccountRef>;
  private readonly pending = new Map<string, Promise<ServiceAccountRef>>();
  private readonly now: () => number;

  constructor(private readonly options: TokenReviewerOptions) {
    this.cache = new ExpiringLru(options.cacheEntries);
    this.now = options.now ?? Date.now;
    options.metrics.tokenCacheEntries.collect(() => [{ labels: {}, value: this.cache.size }]);
  }

  /**
   * The ServiceAccount `token` authenticates as, for the identity audience; throws CertifyError.
   * A cached token needs no claim parsing: it passed the checks, and its entry expires with it.
   */
  authenticate(token: string): Promise<ServiceAccountRef> {
    const now = this.now();
    const key = hash("sha256", token, "base64");
    const cached = this.cache.get(key, now);
    if (cached !== undefined) {
      this.options.metrics.tokenCacheLookups.inc({ result: "hit" });
      return Promise.resolve(cached);
    }
    const claims = readClaims(token);
    checkClaims(claims, this.options.audience, now);
    this.options.metrics.tokenCacheLookups.inc({ result: "miss" });
    const inFlight = this.pending.get(key);
    if (inFlight !== undefined) return inFlight;
    if (this.pending.size >= this.options.maxPending) {
      throw new CertifyError(
        "TooManyRequests",
        `${this.pending.size} TokenReviews are already in flight; retry shortly`,
      );
    }
    const maxCache = this.options.maxCacheMs;
    const until = maxCache === undefined ? claims.expiresAt : Math.min(claims.expiresAt, now + maxCache);
    const review = this.review(token, key, until).finally(() => this.pending.delete(key));
    this.pending.set(key, review);
    return review;
  }

  private async review(token: string, key: string, until: number): Promise<ServiceAccountRef> {
    const { audience, metrics } = this.options;
    let status: TokenReviewStatus;
    try {
      status = await this.options.review(token, [audience]);
    } catch (err) {
      metrics.tokenReviews.inc({ result: "error" });
      throw new CertifyError(
        "TokenReviewUnavailable",
        `could not ask the API server to review the token (${err instanceof Error ? err.message.slice(0, 200) : "unknown error"})`,
      );
    }
    let account: ServiceAccountRef;
    try {
      account = accountOf(status, audience);
    } catch (err) {
      metrics.tokenReviews.inc({ result: "unauthenticated" });
      throw err;
    }
    metrics.tokenReviews.inc({ result: "authenticated" });
    this.cache.set(key, account, until);
    return account;
  }
}
