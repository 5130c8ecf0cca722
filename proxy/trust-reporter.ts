/**
 * Tells the control plane what this proxy trusts: the fingerprints of its trust bundle and of
 * the anchor its leaf chains to, sent after every leaf it installs and every bundle it loads
 * (so at least once per renewal). The operator's trust-anchor rotation waits on these reports.
 * Sending is in the background and never holds up traffic or identity: one report in flight at
 * a time, a newer state replaces an unsent one, failures retry with capped exponential back-off
 * — except refusals that a retry cannot fix (4xx other than 408/429), which wait for the next
 * change or renewal.
 *
 * Owns: report timing, coalescing and retries. Does not own the wire exchange
 * (identity-client.ts) or what the state is (local-identity.ts).
 */
import { backoffDelayMs } from "./backoff.ts";
import type { BundleLog } from "./trust-bundle.ts";

export interface TrustState {
  trustBundleFingerprints: string[];
  leafAnchorFingerprint: string | undefined;
}

export interface ReportStatus {
  /** When the identity service last accepted a report (ISO 8601), if ever. */
  lastReportedAt: string | undefined;
  /** Why the last attempt failed, if it did. */
  lastReportError: string | undefined;
}

/** Report retries: ~0.25–0.5 s first, doubling, at most 30 s; jittered (backoff.ts). */
const reportBackoff = { baseMs: 500, capMs: 30_000 };

export class TrustReporter {
  private pending: TrustState | undefined;
  private sending = false;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastReportedAt: string | undefined;
  private lastReportError: string | undefined;

  constructor(
    private readonly send: (state: TrustState) => Promise<void>,
    private readonly log: BundleLog,
    /** Whether an error is worth retrying (a refusal of the request itself is not). */
    private readonly retryable: (err: unknown) => boolean,
  ) {}

  /** Queues `state` for sending; returns at once. */
  report(state: TrustState): void {
    if (this.stopped) return;
    this.pending = state;
    if (this.sending || this.timer) return;
    void this.drain();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  status(): ReportStatus {
    return { lastReportedAt: this.lastReportedAt, lastReportError: this.lastReportError };
  }

  private async drain(): Promise<void> {
    this.sending = true;
    while (this.pending && !this.stopped) {
      const state = this.pending;
      this.pending = undefined;
      try {
        await this.send(state);
        if (this.failures > 0) this.log.warn({ failures: this.failures }, "trust report sent after failures");
        this.failures = 0;
        this.lastReportedAt = new Date().toISOString();
        this.lastReportError = undefined;
      } catch (err) {
        this.lastReportError = (err as Error).message;
        if (!this.retryable(err)) {
          this.log.warn({ err: this.lastReportError }, "trust report refused; next one at the next change");
          continue;
        }
        this.pending ??= state;
        this.failures++;
        const delay = backoffDelayMs(reportBackoff, this.failures);
        // One warning when reports start failing (and one when they succeed again), not one per retry.
        const line = { err: this.lastReportError, retryInMs: delay, failures: this.failures };
        if (this.failures === 1) this.log.warn(line, "trust report failed; retrying with back-off");
        else this.log.debug?.(line, "trust report retry failed");
        this.sending = false;
        this.timer = setTimeout(() => {
          this.timer = undefined;
          void this.drain();
        }, delay);
        this.timer.unref();
        return;
      }
    }
    this.sending = false;
  }
}
