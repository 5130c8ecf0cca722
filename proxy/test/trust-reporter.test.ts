/**
 * The trust reporter's timing: one report in flight, the newest state wins, retryable failures
 * back off and retry, refusals wait for the next change. The wire exchange itself runs against
 * the real identity service in test/integration/proxy-trust-report.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TrustReporter, type TrustState } from "../trust-reporter.ts";
import { waitFor } from "./proxy-process.ts";

const quiet = { info: () => {}, warn: () => {} };
const state = (...fps: string[]): TrustState => ({
  trustBundleFingerprints: fps,
  leafAnchorFingerprint: fps[0],
});

describe("trust reporter", () => {
  it("sends one report at a time and then only the newest state", async () => {
    const sent: string[] = [];
    let release: () => void = () => {};
    const reporter = new TrustReporter(
      (s) => {
        sent.push(s.trustBundleFingerprints.join());
        return new Promise((r) => {
          release = r;
        });
      },
      quiet,
      () => true,
    );
    reporter.report(state("a"));
    reporter.report(state("b"));
    reporter.report(state("c"));
    assert.deepEqual(sent, ["a"], "nothing else while one is in flight");
    release();
    await waitFor(() => sent.length === 2, 1000);
    assert.deepEqual(sent, ["a", "c"], "b was replaced by c before it was sent");
    release();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(reporter.status().lastReportError, undefined);
    assert.ok(reporter.status().lastReportedAt);
    reporter.stop();
  });

  it("retries a retryable failure with back-off, and drops a refusal until the next change", async () => {
    let calls = 0;
    const reporter = new TrustReporter(
      async (s) => {
        calls++;
        if (s.trustBundleFingerprints[0] === "refused")
          throw Object.assign(new Error("400 InvalidReport"), { retry: false });
        if (calls < 3) throw new Error("503 PodPatchFailed");
      },
      quiet,
      (err) => (err as { retry?: boolean }).retry !== false,
    );
    const started = Date.now();
    reporter.report(state("a"));
    await waitFor(() => reporter.status().lastReportedAt !== undefined, 5000);
    assert.equal(calls, 3, "two failures, then success");
    // Steps of 0.5 s then 1 s, each jittered into its upper half.
    assert.ok(Date.now() - started >= 250 + 500 - 50, "backed off at least 0.25 s then 0.5 s");
    reporter.report(state("refused"));
    await waitFor(() => reporter.status().lastReportError !== undefined, 1000);
    await new Promise((r) => setTimeout(r, 1200));
    assert.equal(calls, 4, "a refusal is not retried");
    reporter.stop();
  });
});
