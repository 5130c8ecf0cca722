/**
 * When this proxy asks for its next leaf: the planned renewal of a healthy leaf, and the retry
 * after a failed request, which gets faster as the leaf's expiry nears. Pure over the leaf's
 * times, the clock and a random source, so every rule is table-tested.
 *
 * Owns: the schedule. Does not keep timers or talk to the identity service (local-identity.ts).
 */
import { backoffDelayMs } from "./backoff.ts";

export interface LeafTimes {
  notBefore: number;
  notAfter: number;
  /** When the leaf was installed; its lifetime counts from here when notBefore was backdated. */
  receivedAt: number;
}

/** First retry ~0.25–0.5 s after a failure, doubling from there. */
export const renewalBaseMs = 500;
/** Retries never wait longer than this while more than a tenth of the lifetime is left. */
export const renewalCapMs = 30_000;
/** Nor longer than this once less than a tenth is left … */
export const nearExpiryCapMs = 10_000;
/** … nor longer than this with no valid leaf at all (none yet, or expired): no new mTLS until then. */
export const noLeafCapMs = 1_000;

function lifetimeOf(leaf: LeafTimes): { start: number; lifetime: number } {
  const start = Math.max(leaf.notBefore, leaf.receivedAt);
  return { start, lifetime: Math.max(1, leaf.notAfter - start) };
}

/** The instant to renew a healthy leaf: `fraction` of its lifetime, up to 5% earlier (jitter). */
export function renewAtMs(leaf: LeafTimes, fraction: number, random: () => number = Math.random): number {
  const { start, lifetime } = lifetimeOf(leaf);
  return start + lifetime * fraction * (1 - random() * 0.05);
}

/**
 * The longest a retry may wait with this leaf at `now`: 30 s normally; at most 10 s once less
 * than 10% of the lifetime is left, shrinking to a tenth of the time left as expiry comes; 1 s
 * without a valid leaf, so a renewal follows within about a second once identity answers again.
 */
export function retryCapMs(leaf: LeafTimes | undefined, now: number): number {
  if (leaf === undefined || now >= leaf.notAfter) return noLeafCapMs;
  const { lifetime } = lifetimeOf(leaf);
  const left = leaf.notAfter - now;
  if (left > lifetime * 0.1) return renewalCapMs;
  return Math.min(nearExpiryCapMs, Math.max(noLeafCapMs, left / 10));
}

/**
 * Delay before retry number `failures` (≥ 1): jittered exponential back-off under the cap above.
 * A retry scheduled before the last tenth of the lifetime (or before expiry) lands no later than
 * that point plus the cap that holds there, so a long step cannot carry it past the boundary.
 */
export function renewalRetryDelayMs(
  leaf: LeafTimes | undefined,
  failures: number,
  now: number,
  random: () => number = Math.random,
): number {
  const delay = backoffDelayMs({ baseMs: renewalBaseMs, capMs: retryCapMs(leaf, now) }, failures, random);
  if (leaf === undefined) return delay;
  const nearExpiry = leaf.notAfter - lifetimeOf(leaf).lifetime * 0.1;
  let bound = delay;
  for (const boundary of [nearExpiry, leaf.notAfter]) {
    if (now < boundary) bound = Math.min(bound, boundary - now + retryCapMs(leaf, boundary + 1));
  }
  return Math.round(bound);
}
