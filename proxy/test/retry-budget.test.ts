import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RetryBudget } from "../retry-budget.ts";

describe("retry budget", () => {
  it("allows minRetriesPerSecond × ttl with no traffic, then refuses", () => {
    let now = 0;
    const b = new RetryBudget({ retryRatio: 0, minRetriesPerSecond: 2, ttlMs: 5_000 }, () => now);
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (b.tryWithdraw()) allowed++;
    assert.equal(allowed, 10);
    now = 6_000;
    assert.equal(b.tryWithdraw(), true, "the window moved on");
  });

  it("adds retryRatio per original request", () => {
    const now = 0;
    const b = new RetryBudget({ retryRatio: 0.2, minRetriesPerSecond: 0, ttlMs: 10_000 }, () => now);
    for (let i = 0; i < 100; i++) b.deposit();
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (b.tryWithdraw()) allowed++;
    assert.equal(allowed, 20);
  });

  it("forgets deposits older than the ttl", () => {
    let now = 0;
    const b = new RetryBudget({ retryRatio: 1, minRetriesPerSecond: 0, ttlMs: 1_000 }, () => now);
    for (let i = 0; i < 10; i++) b.deposit();
    now = 2_500;
    assert.equal(b.tryWithdraw(), false);
  });
});
