/**
 * Peak-EWMA load estimate for one endpoint, as in linkerd2-proxy / Finagle: latency rises to
 * a new peak at once and decays towards later observations exponentially; the load is the
 * estimate times (in-flight requests + 1), so a busy or slow endpoint looks expensive.
 *
 * Owns: the estimate and in-flight count. Does not pick endpoints (balancer.ts).
 */

export interface PeakEwmaParams {
  /** Estimate used before any response was observed. */
  defaultRttMs: number;
  /** Time constant of the exponential decay. */
  decayMs: number;
}

export class PeakEwma {
  private estimateMs: number;
  private stampMs: number;
  private pending = 0;

  constructor(
    private readonly params: PeakEwmaParams,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.estimateMs = params.defaultRttMs;
    this.stampMs = now();
  }

  /** Current cost; lower is better. */
  load(): number {
    return this.decayed(this.now()) * (this.pending + 1);
  }

  get inFlight(): number {
    return this.pending;
  }

  /** Marks a request started; the returned function records its latency when it completes. */
  start(): (rttMs: number) => void {
    this.pending++;
    let done = false;
    return (rttMs: number) => {
      if (done) return;
      done = true;
      this.pending--;
      this.observe(rttMs);
    };
  }

  private observe(rttMs: number): void {
    const now = this.now();
    if (rttMs > this.estimateMs) {
      this.estimateMs = rttMs;
    } else {
      const w = Math.exp(-(now - this.stampMs) / this.params.decayMs);
      this.estimateMs = this.estimateMs * w + rttMs * (1 - w);
    }
    this.stampMs = now;
  }

  /** With no fresh observations the estimate decays towards zero, so an idle endpoint is retried. */
  private decayed(now: number): number {
    const elapsed = now - this.stampMs;
    if (elapsed <= 0) return this.estimateMs;
    return this.estimateMs * Math.exp(-elapsed / this.params.decayMs);
  }
}
