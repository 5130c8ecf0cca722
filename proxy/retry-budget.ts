/**
 * A retry budget: retries may add at most `retryRatio` of the original requests seen in the
 * last `ttl`, plus `minRetriesPerSecond` for low-traffic services. This is what keeps a
 * failing upstream from turning into a retry storm.
 *
 * Owns: the accounting only (a ring of time slices). Does not decide whether a request may be
 * retried at all (layers/retry.ts does).
 */

export interface RetryBudgetParams {
  retryRatio: number;
  minRetriesPerSecond: number;
  ttlMs: number;
}

const slices = 10;

export class RetryBudget {
  private readonly deposits = new Float64Array(slices);
  private readonly withdrawals = new Float64Array(slices);
  private readonly sliceMs: number;
  private currentSlice = 0;
  private currentStart: number;

  constructor(
    readonly params: RetryBudgetParams,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.sliceMs = Math.max(1, params.ttlMs / slices);
    this.currentStart = now();
  }

  /** Records an original (non-retry) request. */
  deposit(): void {
    this.advance();
    this.deposits[this.currentSlice]! += 1;
  }

  /** Takes one retry from the budget; false means the retry must not happen. */
  tryWithdraw(): boolean {
    this.advance();
    let deposited = 0;
    let withdrawn = 0;
    for (let i = 0; i < slices; i++) {
      deposited += this.deposits[i]!;
      withdrawn += this.withdrawals[i]!;
    }
    const allowance =
      (this.params.minRetriesPerSecond * this.params.ttlMs) / 1000 + this.params.retryRatio * deposited;
    if (withdrawn + 1 > allowance) return false;
    this.withdrawals[this.currentSlice]! += 1;
    return true;
  }

  private advance(): void {
    const now = this.now();
    const elapsed = Math.floor((now - this.currentStart) / this.sliceMs);
    if (elapsed <= 0) return;
    const clear = Math.min(elapsed, slices);
    for (let i = 1; i <= clear; i++) {
      const idx = (this.currentSlice + i) % slices;
      this.deposits[idx] = 0;
      this.withdrawals[idx] = 0;
    }
    this.currentSlice = (this.currentSlice + elapsed) % slices;
    this.currentStart += elapsed * this.sliceMs;
  }
}

/** Linkerd's defaults when a profile gives no budget. */
export const defaultRetryBudget: RetryBudgetParams = {
  retryRatio: 0.2,
  minRetriesPerSecond: 10,
  ttlMs: 10_000,
};
