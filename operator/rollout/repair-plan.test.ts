// The data-plane repair: canaried restarts of the workloads with pods missing a proxy, at most
// once per pass, never while a rollout runs or the injector is down, never again when a
// restart did not help.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import { planRepair, type RepairInput } from "./repair-plan.ts";
import type { Rollout } from "./rollout-steps.ts";
import type { OtherPods, WorkloadView } from "./workloads.ts";

const T0 = new Date("2026-12-05T12:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function spec(repair: "Restart" | "Report" = "Restart"): MeshSpec {
  const r = validateMeshSpec({
    version: "1.0.0",
    injection: { repair },
    upgrade: {
      canary: { percent: 20 },
      waves: [100],
      maxConcurrentRestarts: 5,
      analysis: { interval: "10s" },
    },
  });
  assert.ok(r.ok, r.errors.join("; "));
  return r.value;
}

/** n Deployments of 2 pods; those in `gap` have that many pods without a proxy (created at T0 - 60 s). */
function fleet(n: number, gap: Record<number, number>): WorkloadView[] {
  return Array.from({ length: n }, (_, i) => {
    const missing = gap[i] ?? 0;
    return {
      kind: "Deployment" as const,
      namespace: "shop",
      name: `w${i}`,
      key: `Deployment/shop/w${i}`,
      templateVersion: undefined,
      labels: {},
      pods: new Map([["1.0.0", { total: 2 - missing, ready: 2 - missing, restarts: 0 }]]),
      replicas: 2,
      rolledOut: true,
      ...(missing > 0 ? { gaps: { missing, outOfSkew: 0, newestCreatedAt: at(-60).getTime() } } : {}),
    };
  });
}

/** Applies restarts as if they rolled out at once, with proxies (or, `withoutProxy`, still without). */
function restarted(w: WorkloadView[], names: string[], when: Date, withoutProxy = false): WorkloadView[] {
  return w.map((x) => {
    if (!names.includes(x.name)) return x;
    const { gaps: _, ...rest } = x;
    return {
      ...rest,
      templateVersion: "1.0.0",
      restartedAt: when.toISOString(),
      pods: new Map([["1.0.0", { total: withoutProxy ? 0 : 2, ready: withoutProxy ? 0 : 2, restarts: 0 }]]),
      ...(withoutProxy ? { gaps: { missing: 2, outOfSkew: 0, newestCreatedAt: when.getTime() + 1000 } } : {}),
    };
  });
}

function input(over: Partial<RepairInput>): RepairInput {
  return {
    spec: spec(),
    fleetVersion: "1.0.0",
    controlPlaneVersion: "1.0.0",
    repair: undefined,
    rolloutActive: false,
    rolloutTarget: "1.0.0",
    workloads: fleet(10, { 2: 2, 5: 1, 7: 2 }),
    gapOthers: [],
    budgets: [],
    injectorReady: true,
    analyse: () => ({ healthy: true, detail: "all ready" }),
    now: T0,
    ...over,
  };
}

/** Runs passes until the repair settles, each restart rolling out at once. */
function drive(over: Partial<RepairInput>, withoutProxy = false) {
  let workloads = over.workloads ?? input({}).workloads;
  let repair = over.repair;
  const restarts: string[] = [];
  const events: string[] = [];
  for (let s = 0; s < 300; s += 5) {
    const d = planRepair(input({ ...over, workloads, repair, now: at(s) }));
    repair = d.rollout;
    events.push(...d.events.map((e) => e.reason));
    const names = d.restart.map((r) => r.workload.name);
    restarts.push(...names);
    workloads = restarted(workloads, names, at(s), withoutProxy);
    if (repair && repair.state !== "Restarting" && repair.state !== "Analysing") break;
  }
  return { repair, restarts, events, workloads };
}

describe("data-plane repair", () => {
  it("restarts the workloads with pods missing a proxy, canary first, each once", () => {
    const r = drive({});
    assert.equal(r.repair?.state, "Complete");
    assert.deepEqual(r.restarts, ["w2", "w5", "w7"]);
    assert.deepEqual(r.events, ["RepairStarted", "RepairStepPassed", "RepairStepPassed", "RepairComplete"]);
    const again = planRepair(input({ workloads: r.workloads, repair: r.repair, now: at(400) }));
    assert.deepEqual(again.restart, [], "nothing left to repair");
  });

  it("with Report, restarts nothing", () => {
    const d = planRepair(input({ spec: spec("Report") }));
    assert.deepEqual([d.restart, d.rollout, d.events], [[], undefined, []]);
  });

  it("waits for a proxy rollout, and is superseded by one", () => {
    assert.deepEqual(planRepair(input({ rolloutActive: true, rolloutTarget: "1.1.0" })).restart, []);
    const started = planRepair(input({})).rollout as Rollout;
    const d = planRepair(input({ repair: started, rolloutActive: true, rolloutTarget: "1.1.0", now: at(5) }));
    assert.equal(d.rollout?.state, "Superseded");
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ["RepairSuperseded"],
    );
  });

  it("restarts nothing while the injector does not serve, nor for a pod admitted without a proxy a moment ago", () => {
    const d = planRepair(input({ injectorReady: false }));
    assert.deepEqual([d.restart, d.rollout], [[], undefined]);
    const young = fleet(3, { 1: 1 }).map((w) =>
      w.gaps ? { ...w, gaps: { ...w.gaps, newestCreatedAt: at(-5).getTime() } } : w,
    );
    assert.deepEqual(planRepair(input({ workloads: young })).restart, []);
    assert.deepEqual(
      planRepair(input({ workloads: young, now: at(11) })).restart.map((r) => r.workload.name),
      ["w1"],
    );
  });

  it("never restarts a workload twice in a pass, also after an operator restart", () => {
    const first = planRepair(input({}));
    assert.deepEqual(
      first.restart.map((r) => r.workload.name),
      ["w2"],
    );
    // The successor sees the patched template (restarted-at after the pass began) and status.repair.
    const workloads = restarted(input({}).workloads, ["w2"], at(1));
    const next = planRepair(input({ workloads, repair: first.rollout, now: at(2) }));
    assert.deepEqual(next.restart, [], "w2 in flight, the canary holds the rest");
  });

  it("does not restart again a workload whose restart did not help, and says why", () => {
    const r = drive({}, true);
    assert.equal(r.repair?.state, "Complete");
    assert.match(r.repair?.message ?? "", /still without a proxy after their restart: Deployment\/shop\/w2/);
    const later = planRepair(input({ workloads: r.workloads, repair: r.repair, now: at(500) }));
    assert.deepEqual(later.restart, [], "no second pass over the same workloads");
    assert.ok(
      later.workloads.every((p) => p.action.action === "Skip" && p.action.reason === "RestartDidNotHelp"),
    );
  });

  it("keeps a workload a restart did not help out of the next pass too", () => {
    const first = drive({ workloads: fleet(10, { 2: 2 }) }, true);
    assert.deepEqual(first.restarts, ["w2"]);
    // New pods without a proxy appear in w8: a new pass restarts w8, and not w2 again.
    const workloads = first.workloads.map((w) =>
      w.name === "w8" ? { ...w, gaps: { missing: 1, outOfSkew: 0, newestCreatedAt: at(-30).getTime() } } : w,
    );
    const second = drive({ workloads, repair: first.repair });
    assert.deepEqual(second.restarts, ["w8"]);
    assert.equal(second.repair?.startedAt, first.repair?.startedAt, "the same repair goes on");
  });

  it("reports bare pods and Jobs, never restarts them", () => {
    const gapOthers: OtherPods[] = [
      { kind: "Pod", namespace: "shop", name: "debug", key: "Pod/shop/debug", versions: new Map([["", 1]]) },
    ];
    const r = drive({ workloads: fleet(3, { 1: 2 }), gapOthers });
    assert.deepEqual(r.restarts, ["w1"]);
    assert.equal(r.repair?.pendingPods, 1);
    assert.match(
      r.repair?.message ?? "",
      /1 pod pending until they end or are re-created \(Pod shop\/debug\)/,
    );
  });

  it("repairs proxies out of skew onto the fleet's version, unless that version is out of skew too", () => {
    const skewed = fleet(3, {}).map((w) =>
      w.name === "w1"
        ? {
            ...w,
            templateVersion: "0.8.0",
            pods: new Map([["0.8.0", { total: 2, ready: 2, restarts: 0 }]]),
            gaps: { missing: 0, outOfSkew: 2, newestCreatedAt: at(-60).getTime() },
          }
        : w,
    );
    const d = planRepair(input({ workloads: skewed }));
    assert.deepEqual(
      d.restart.map((r) => [r.workload.name, r.version]),
      [["w1", "1.0.0"]],
    );
    const stuck = planRepair(
      input({ workloads: skewed, fleetVersion: "0.8.0", controlPlaneVersion: "1.0.0" }),
    );
    assert.deepEqual(stuck.restart, []);
    assert.equal(
      stuck.workloads[0]?.action.action === "Skip" && stuck.workloads[0].action.reason,
      "FleetOutOfSkew",
    );
    // A fleet on CNI capture: its revision is "1.0.0/cni", the proxy version within it is judged.
    const cni = planRepair(input({ workloads: skewed, fleetVersion: "1.0.0/cni" }));
    assert.deepEqual(
      cni.restart.map((r) => [r.workload.name, r.version]),
      [["w1", "1.0.0/cni"]],
    );
  });
});
