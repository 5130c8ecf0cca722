// The scale run of bench/rollout-scale.bench.ts at a small size, as a test of its invariants
// (not of its timing): every workload restarted exactly once, every pod on the new version,
// the operator's writes bounded per workload; then the repair of 10% more workloads created
// while the injector was down, each restarted once.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runRolloutScale } from "../../bench/rollout-scale.ts";

describe("rollout at (small) scale", { timeout: 600_000 }, () => {
  it("restarts each of 40 workloads once and stays within a few writes per workload", async () => {
    const f = await runRolloutScale({
      workloads: 40,
      replicas: 3,
      namespaces: 4,
      nodes: 3,
      interval: "2s",
      waves: [25, 50, 100],
      canaryPercent: 10,
      maxConcurrentRestarts: 10,
      peer: false,
      repairPercent: 10,
      log: () => {},
    });
    assert.equal(f.pods, 120);
    assert.deepEqual([f.restartedTwice, f.notRestarted], [0, 0]);
    assert.equal(f.podsWithoutProxy, 0, "every pod replaced by the rollout has a proxy");
    assert.ok(f.writesPerWorkload <= 3, `${f.writesPerWorkload} writes per workload`);
    assert.ok(f.rolloutWallS >= f.sumOfWaitsS, "every step waited its analysis interval");
    // 4 workloads created while the injector was down: each restarted once by the repair.
    assert.deepEqual([f.repair?.workloads, f.repair?.restartedTwice, f.repair?.notRestarted], [4, 0, 0]);
    // One patch per repaired workload, and per step a few status writes and Events (the bench
    // measures writes per workload at a size where that fixed part no longer counts).
    const beyondPatches = (f.repair?.apiWrites ?? 999) - 4;
    assert.ok(
      beyondPatches <= 10 * f.steps,
      `${beyondPatches} writes beyond the patches in ${f.steps} steps`,
    );
  });
});
