// rollout status shows a data-plane repair (status.repair) beside the proxy rollout, or alone.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Mesh } from "../../api/index.ts";
import { rolloutProgress } from "./rollout-progress.ts";
import { renderRolloutProgress } from "./rollout-render.ts";

const NOW = new Date("2026-12-05T12:00:00Z");
const fleet = { inventory: { workloads: [], others: [], gapOthers: [] }, budgets: [] };

function mesh(repair?: NonNullable<Mesh["status"]>["repair"]): Mesh {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Mesh",
    metadata: { name: "default" },
    spec: { version: "1.4.0" } as Mesh["spec"],
    status: {
      proxies: { total: 6, updated: 4, summary: "4/4 (2 missing)", version: "1.4.0" },
      ...(repair ? { repair } : {}),
    },
  };
}

describe("rollout status and the data-plane repair", () => {
  it("shows a repair in progress, and nothing of one that completed", () => {
    const repairing = rolloutProgress(
      mesh({
        fromVersion: "1.4.0",
        toVersion: "1.4.0",
        step: 0,
        steps: 2,
        state: "Restarting",
        updatedWorkloads: 0,
        totalWorkloads: 2,
      }),
      fleet,
      NOW,
    );
    assert.equal(
      repairing.repair,
      "data-plane repair onto 1.4.0: canary (step 1 of 2) restarting, 0/2 workloads repaired",
    );
    assert.equal(
      renderRolloutProgress(repairing),
      "Mesh default: no proxy rollout: proxies on 1.4.0 (4/4 (2 missing))\nRepair: data-plane repair onto 1.4.0: canary (step 1 of 2) restarting, 0/2 workloads repaired\n",
    );
    const done = rolloutProgress(
      mesh({
        fromVersion: "1.4.0",
        toVersion: "1.4.0",
        step: 1,
        steps: 2,
        state: "Complete",
        message: "restarted 2 workloads",
      }),
      fleet,
      NOW,
    );
    assert.equal(done.repair, undefined);
  });
});
