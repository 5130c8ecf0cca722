/**
 * Retry delays that spread a fleet out: capped exponential back-off with jitter. Every proxy
 * that loses its control plane at the same instant would otherwise retry at the same instants
 * (0.2 s, 0.4 s, 0.8 s …) and hit it together when it returns.
 *
 * Owns: the delay arithmetic. Does not keep timers or failure counts (the callers do).
 */

export interface Backoff {
  baseMs: number;
  capMs: number;
}

/**
 * The delay before retry number `failures` (1 for the first retry): the exponential step
 * `baseMs × 2^(failures-1)`, capped at `capMs`, then drawn uniformly from its upper half
 * ("equal jitter"), so a retry never comes much earlier than the step says, and no two
 * proxies stay in lockstep.
 */
export function backoffDelayMs(b: Backoff, failures: number, random: () => number = Math.random): number {
  const step = Math.min(b.capMs, b.baseMs * 2 ** Math.min(Math.max(failures - 1, 0), 30));
  return Math.round(step / 2 + (random() * step) / 2);
}
