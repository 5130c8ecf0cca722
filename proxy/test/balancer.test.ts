import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Balancer } from "../balancer.ts";
import { PeakEwma } from "../peak-ewma.ts";

describe("peak-EWMA", () => {
  it("jumps to a peak at once and decays towards faster observations", () => {
    let now = 0;
    const e = new PeakEwma({ defaultRttMs: 10, decayMs: 1_000 }, () => now);
    e.start()(100);
    assert.equal(e.load(), 100);
    now = 1_000;
    e.start()(10);
    assert.ok(e.load() > 10 && e.load() < 100);
  });

  it("counts in-flight requests into the load", () => {
    const now = 0;
    const e = new PeakEwma({ defaultRttMs: 10, decayMs: 1_000 }, () => now);
    const done = e.start();
    e.start();
    assert.equal(e.load(), 30);
    done(10);
    assert.equal(e.inFlight, 1);
  });
});

describe("balancer (power of two choices)", () => {
  it("prefers the endpoint with the lower load", () => {
    const b = new Balancer({ defaultRttMs: 10, decayMs: 10_000 });
    b.update([
      { address: "a", port: 1 },
      { address: "b", port: 1 },
    ]);
    const [a] = b.list();
    a!.ewma.start()(500);
    for (let i = 0; i < 20; i++) assert.equal(b.pick()?.address, "b");
  });

  it("keeps load state for endpoints that survive an update and avoids excluded ones", () => {
    const b = new Balancer({ defaultRttMs: 10, decayMs: 10_000 });
    b.update([{ address: "a", port: 1 }]);
    const a = b.list()[0]!;
    b.update([
      { address: "a", port: 1 },
      { address: "c", port: 1 },
    ]);
    assert.equal(b.list()[0], a);
    assert.equal(b.pick(new Set([a.key]))?.address, "c");
    assert.equal(
      b.pick(new Set(b.list().map((e) => e.key)))?.address !== undefined,
      true,
      "falls back when all are excluded",
    );
  });

  it("returns nothing without endpoints", () => {
    assert.equal(new Balancer({ defaultRttMs: 1, decayMs: 1 }).pick(), undefined);
  });
});
