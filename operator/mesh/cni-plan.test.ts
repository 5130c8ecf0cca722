// The trellis-cni lifecycle as a table: install, switch the fleet once ready everywhere, stay
// while CNI pods remain, uninstall, then delete — and never flip a CNI fleet back on a new node.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CNI_PHASE_LABEL, type CniDaemonSetView, type CniPlanInput, planCni } from "./cni-plan.ts";

const ds = (phase: "Install" | "Uninstall", ready: number, nodes = 3, observed = 2): CniDaemonSetView => ({
  metadata: { generation: 2, labels: { [CNI_PHASE_LABEL]: phase } },
  status: {
    observedGeneration: observed,
    desiredNumberScheduled: nodes,
    updatedNumberScheduled: ready,
    numberReady: ready,
  },
});

const input = (over: Partial<CniPlanInput>): CniPlanInput => ({
  specMode: "CNI",
  fleetMode: undefined,
  daemonSet: undefined,
  cniPods: 0,
  refused: { count: 0, examples: [] },
  ...over,
});

describe("planCni", () => {
  it("installs, and keeps trellis-init for new pods until every node is ready", () => {
    const first = planCni(input({}));
    assert.equal(first.phase, "Install");
    assert.equal(first.fleetMode, "InitContainer");
    assert.equal(first.progress?.reason, "InstallingCniPlugin");
    assert.equal(planCni(input({ daemonSet: ds("Install", 2) })).fleetMode, "InitContainer");
    assert.equal(
      planCni(input({ daemonSet: ds("Install", 3, 3, 1) })).fleetMode,
      "InitContainer",
      "stale status",
    );
    const ready = planCni(input({ daemonSet: ds("Install", 3) }));
    assert.equal(ready.fleetMode, "CNI");
    assert.equal(ready.progress, undefined);
    assert.deepEqual(
      ready.status.cni && { nodes: ready.status.cni.nodes, ready: ready.status.cni.readyNodes },
      {
        nodes: 3,
        ready: 3,
      },
    );
  });

  it("keeps a CNI fleet on CNI when a new node is not ready yet, and reports refused pods", () => {
    const plan = planCni(
      input({
        fleetMode: "CNI",
        daemonSet: ds("Install", 3, 4),
        refused: { count: 1, examples: ["demo/web-1 on n4"] },
      }),
    );
    assert.equal(plan.fleetMode, "CNI");
    assert.equal(plan.status.cni?.refusedPods, 1);
    assert.match(plan.status.cni?.message ?? "", /demo\/web-1 on n4/);
  });

  it("switching back: trellis-init at once, the plugin kept while CNI pods remain, then uninstalled, then deleted", () => {
    const back = { specMode: "InitContainer" as const, fleetMode: "CNI" as const };
    const kept = planCni(input({ ...back, daemonSet: ds("Install", 3), cniPods: 4 }));
    assert.deepEqual([kept.phase, kept.fleetMode], ["Install", "InitContainer"]);
    assert.match(kept.progress?.message ?? "", /4 pods meshed in CNI mode/);
    const removing = planCni(input({ ...back, daemonSet: ds("Install", 3) }));
    assert.equal(removing.phase, "Uninstall");
    assert.equal(planCni(input({ ...back, daemonSet: ds("Uninstall", 2) })).phase, "Uninstall");
    assert.equal(
      planCni(input({ ...back, daemonSet: ds("Uninstall", 3, 3, 1) })).phase,
      "Uninstall",
      "stale",
    );
    const done = planCni(input({ ...back, daemonSet: ds("Uninstall", 3) }));
    assert.deepEqual([done.phase, done.status], ["Absent", { mode: "InitContainer" }]);
    assert.equal(planCni(input({ specMode: "InitContainer" })).phase, "Absent");
  });
});
