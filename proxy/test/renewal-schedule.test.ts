// The renewal schedule and the back-off under it, as tables: when a healthy leaf is renewed, and
// how long a failed renewal waits, depending on how much of the leaf's lifetime is left.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelayMs } from "../backoff.ts";
import { type LeafTimes, renewAtMs, renewalRetryDelayMs, retryCapMs } from "../renewal-schedule.ts";

const hour = 3_600_000;
const t0 = 1_000_000_000_000;
/** A 24 h leaf received at t0, its notBefore backdated 60 s. */
const day: LeafTimes = { notBefore: t0 - 60_000, notAfter: t0 + 24 * hour, receivedAt: t0 };

describe("jittered back-off", () => {
  it("doubles from the base up to the cap, each delay drawn from the upper half of its step", () => {
    const b = { baseMs: 200, capMs: 10_000 };
    const steps = [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
    for (const [i, step] of steps.entries()) {
      assert.equal(
        backoffDelayMs(b, i + 1, () => 0),
        step / 2,
        `low end of retry ${i + 1}`,
      );
      assert.equal(
        backoffDelayMs(b, i + 1, () => 1),
        step,
        `high end of retry ${i + 1}`,
      );
    }
    assert.equal(
      backoffDelayMs(b, 1000, () => 1),
      10_000,
      "no overflow after many failures",
    );
  });

  it("spreads a fleet: delays for the same retry differ between draws", () => {
    const delays = new Set(
      Array.from({ length: 50 }, () => backoffDelayMs({ baseMs: 200, capMs: 10_000 }, 5)),
    );
    assert.ok(delays.size > 25, `only ${delays.size} distinct delays in 50 draws`);
  });
});

describe("renewal schedule", () => {
  it("renews a healthy leaf at the configured fraction of its lifetime, counted from receipt, up to 5% early", () => {
    assert.equal(
      renewAtMs(day, 0.7, () => 0),
      t0 + 0.7 * 24 * hour,
    );
    assert.equal(
      renewAtMs(day, 0.7, () => 1),
      t0 + 0.7 * 0.95 * 24 * hour,
    );
  });

  const caps: Array<[string, LeafTimes | undefined, number, number]> = [
    ["no leaf yet", undefined, t0, 1_000],
    ["at 70% of the lifetime", day, t0 + 0.7 * 24 * hour, 30_000],
    ["with just over 10% left", day, t0 + 0.89 * 24 * hour, 30_000],
    ["with just under 10% left (2.4 h)", day, t0 + 0.91 * 24 * hour, 10_000],
    ["with 50 s left", day, day.notAfter - 50_000, 5_000],
    ["with 5 s left", day, day.notAfter - 5_000, 1_000],
    ["expired", day, day.notAfter + 1, 1_000],
    ["expired an hour ago", day, day.notAfter + hour, 1_000],
  ];
  for (const [name, leaf, now, cap] of caps) {
    it(`waits at most ${cap / 1000} s between retries ${name}`, () => {
      assert.equal(retryCapMs(leaf, now), cap);
      for (const failures of [1, 3, 8, 30]) {
        assert.ok(renewalRetryDelayMs(leaf, failures, now, () => 1) <= cap);
      }
      assert.equal(
        renewalRetryDelayMs(leaf, 30, now, () => 1),
        cap,
        "a long run of failures reaches the cap",
      );
    });
  }

  it("never waits longer than 10 s once less than 10% of the lifetime is left, for any leaf length", () => {
    for (const lifetime of [60_000, 10 * 60_000, hour, 24 * hour, 90 * 24 * hour]) {
      const leaf = { notBefore: t0, notAfter: t0 + lifetime, receivedAt: t0 };
      for (let left = lifetime * 0.099; left > -lifetime; left -= lifetime / 37) {
        const delay = renewalRetryDelayMs(leaf, 50, leaf.notAfter - left, Math.random);
        assert.ok(delay <= 10_000, `lifetime ${lifetime} ms, ${left} ms left: ${delay} ms`);
      }
    }
  });

  it("does not let a long step carry a retry past the last tenth of the lifetime, or past expiry", () => {
    const leaf = { notBefore: t0, notAfter: t0 + 12_000, receivedAt: t0 };
    // At 10.5 s a fifth failure would wait 4–8 s; the last tenth starts at 10.8 s.
    assert.ok(renewalRetryDelayMs(leaf, 5, t0 + 10_500, () => 1) <= 300 + 1_000);
    // A lifetime that is not a round number (notAfter is whole seconds, receipt is not).
    const odd = { notBefore: t0 - 2_000, notAfter: t0 + 11_437, receivedAt: t0 };
    assert.ok(renewalRetryDelayMs(odd, 5, odd.notAfter - 2_659, () => 1) <= 2_659 - 1_144 + 1_000);
    const atDay = t0 + 0.85 * 24 * hour;
    assert.ok(renewalRetryDelayMs(day, 30, atDay, () => 1) <= 30_000);
    const justBefore = day.notAfter - 0.1 * (day.notAfter - t0) - 5_000;
    assert.ok(renewalRetryDelayMs(day, 30, justBefore, () => 1) <= 5_000 + 10_000);
  });

  it("starts retrying fast after the first failure", () => {
    assert.ok(renewalRetryDelayMs(day, 1, t0 + 0.7 * 24 * hour, () => 1) <= 500);
  });
});
