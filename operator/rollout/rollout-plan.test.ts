import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import {
  type AnalysisVerdict,
  planRollout,
  type Rollout,
  type RolloutInput,
  stepTargets,
} from "./rollout-plan.ts";
import type { WorkloadView } from "./workloads.ts";

const T0 = new Date("2026-11-25T12:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);

function spec(upgrade: Record<string, unknown> = {}): MeshSpec {
  const r = validateMeshSpec({
    version: "1.0.0",
    proxy: { version: "1.1.0" },
    upgrade: {
      canary: { percent: 10 },
      waves: [50, 100],
      maxConcurrentRestarts: 2,
      analysis: { interval: "30s" },
      stepDeadline: "5m",
      ...upgrade,
    },
  });
  assert.ok(r.ok, r.errors.join("; "));
  return r.value;
}

/** n workloads of 2 pods; those listed in `on` run (and ask for) the given version. */
function fleet(n: number, on: Record<number, { version: string; ready?: boolean }> = {}): WorkloadView[] {
  return Array.from({ length: n }, (_, i) => {
    const v = on[i];
    const version = v?.version ?? "1.0.0";
    return {
      kind: "Deployment" as const,
      namespace: `ns${Math.floor(i / 10)}`,
      name: `w${String(i).padStart(3, "0")}`,
      key: `Deployment/ns/w${String(i).padStart(3, "0")}`,
      templateVersion: v ? v.version : undefined,
      labels: { tier: i === 7 ? "canary" : "web" },
      pods: new Map([[version, { total: 2, ready: v?.ready === false ? 0 : 2, restarts: 0 }]]),
      replicas: 2,
    };
  });
}
const healthy = (): AnalysisVerdict => ({ healthy: true, detail: "all pods ready" });

function plan(over: Partial<RolloutInput>) {
  return planRollout({
    spec: spec(),
    fleetVersion: "1.0.0",
    target: "1.1.0",
    rollout: undefined,
    workloads: fleet(20),
    analyse: healthy,
    blocked: () => false,
    now: T0,
    ...over,
  });
}

describe("rollout plan", () => {
  it("splits workloads into a canary and cumulative waves, or a canary by selector", () => {
    const w = fleet(20);
    assert.deepEqual(
      stepTargets(spec(), w).map((s) => s.length),
      [2, 10, 20],
    );
    const bySelector = stepTargets(spec({ canary: { selector: { matchLabels: { tier: "canary" } } } }), w);
    assert.deepEqual(
      bySelector[0]?.map((x) => x.name),
      ["w007"],
    );
    assert.equal(bySelector[1]?.[0]?.name, "w007", "the canary stays first");
  });

  it("completes at once when nothing is meshed yet", () => {
    const d = plan({ workloads: [] });
    assert.deepEqual([d.rollout?.state, d.fleetVersion, d.restart, d.events], ["Complete", "1.1.0", [], []]);
  });

  it("does nothing when the fleet already runs the target", () => {
    const d = plan({ target: "1.0.0" });
    assert.deepEqual([d.rollout, d.restart, d.events], [undefined, [], []]);
  });

  it("starts with the canary, restarting at most maxConcurrentRestarts at a time", () => {
    const d = plan({ spec: spec({ canary: { percent: 20 } }) });
    assert.equal(d.rollout?.state, "Restarting");
    assert.deepEqual(
      d.restart.map((r) => [r.workload.name, r.version]),
      [
        ["w000", "1.1.0"],
        ["w001", "1.1.0"],
      ],
    );
    assert.deepEqual(
      d.events.map((e) => e.reason),
      ["RolloutStarted"],
    );
    const busy = plan({
      spec: spec({ canary: { percent: 20 } }),
      rollout: d.rollout,
      workloads: fleet(20, { 0: { version: "1.1.0", ready: false }, 1: { version: "1.1.0", ready: false } }),
      now: at(5),
    });
    assert.deepEqual(busy.restart, [], "no room while two restarts are in flight");
    assert.deepEqual(busy.events, []);
  });

  it("analyses a finished step for the interval, then moves to the next wave, then completes", () => {
    const started = plan({}).rollout as Rollout;
    const canaryDone = fleet(20, { 0: { version: "1.1.0" }, 1: { version: "1.1.0" } });
    const analysing = plan({ rollout: started, workloads: canaryDone, now: at(10) });
    assert.equal(analysing.rollout?.state, "Analysing");
    assert.deepEqual(analysing.restart, []);
    const still = plan({ rollout: analysing.rollout, workloads: canaryDone, now: at(30) });
    assert.equal(still.rollout?.state, "Analysing");
    const next = plan({ rollout: still.rollout, workloads: canaryDone, now: at(41) });
    assert.deepEqual([next.rollout?.step, next.rollout?.state], [1, "Restarting"]);
    assert.deepEqual(
      next.events.map((e) => e.reason),
      ["StepPassed"],
    );
    const wave1 = plan({ rollout: next.rollout, workloads: canaryDone, now: at(42) });
    assert.deepEqual(
      wave1.restart.map((r) => r.workload.name),
      ["w002", "w003"],
    );
    const all = fleet(
      20,
      Object.fromEntries(Array.from({ length: 20 }, (_, i) => [i, { version: "1.1.0" }])),
    );
    const last = plan({
      rollout: { ...started, step: 2, state: "Analysing", analysisSince: at(100).toISOString() },
      workloads: all,
      now: at(131),
    });
    assert.deepEqual([last.rollout?.state, last.fleetVersion], ["Complete", "1.1.0"]);
    assert.deepEqual(
      last.events.map((e) => e.reason),
      ["StepPassed", "RolloutComplete"],
    );
  });

  it("never restarts a workload twice: one already on the version is left alone after an operator restart", () => {
    const started = plan({}).rollout as Rollout;
    const d = plan({
      rollout: started,
      workloads: fleet(20, { 0: { version: "1.1.0", ready: false } }),
      now: at(3),
    });
    assert.deepEqual(
      d.restart.map((r) => r.workload.name),
      ["w001"],
    );
  });

  it("rolls the upgraded workloads back when analysis fails, and stays rolled back", () => {
    const started = plan({}).rollout as Rollout;
    const broken = fleet(20, { 0: { version: "1.1.0" }, 1: { version: "1.1.0" } });
    const failing = (): AnalysisVerdict => ({ healthy: false, detail: "success rate 0.62 < 0.99" });
    const d = plan({ rollout: started, workloads: broken, analyse: failing, now: at(12) });
    assert.equal(d.rollout?.state, "RolledBack");
    assert.deepEqual(
      d.restart.map((r) => [r.workload.name, r.version]),
      [
        ["w000", "1.0.0"],
        ["w001", "1.0.0"],
      ],
    );
    assert.match(d.failure?.message ?? "", /success rate 0\.62 < 0\.99/);
    assert.deepEqual(
      d.events.map((e) => [e.type, e.reason]),
      [["Warning", "RolledBack"]],
    );
    const later = plan({ rollout: d.rollout, workloads: fleet(20), now: at(60) });
    assert.deepEqual(
      [later.rollout?.state, later.restart, later.events, later.fleetVersion],
      ["RolledBack", [], [], "1.0.0"],
    );
    assert.ok(later.failure, "a rolled-back rollout keeps the mesh Degraded");
  });

  it("fails a step whose restarts do not finish by the step deadline", () => {
    const started = plan({}).rollout as Rollout;
    const stuck = fleet(20, { 0: { version: "1.1.0", ready: false }, 1: { version: "1.1.0", ready: false } });
    const d = plan({ rollout: started, workloads: stuck, now: at(301) });
    assert.equal(d.rollout?.state, "RolledBack");
    assert.match(d.failure?.message ?? "", /2 workloads not ready after 5m/);
  });

  it("halts instead of rolling back with onFailure: Pause, and resumes through paused", () => {
    const s = spec({ onFailure: "Pause" });
    const started = plan({ spec: s }).rollout as Rollout;
    const failing = (): AnalysisVerdict => ({ healthy: false, detail: "p99 3.2x baseline" });
    const halted = plan({
      spec: s,
      rollout: started,
      workloads: fleet(20, { 0: { version: "1.1.0" } }),
      analyse: failing,
      now: at(5),
    });
    assert.deepEqual([halted.rollout?.state, halted.restart], ["Halted", []]);
    const held = plan({ spec: s, rollout: halted.rollout, now: at(60) });
    assert.equal(held.rollout?.state, "Halted");
    const paused = plan({
      spec: spec({ onFailure: "Pause", paused: true }),
      rollout: held.rollout,
      now: at(70),
    });
    assert.equal(paused.rollout?.state, "Paused");
    const resumed = plan({ spec: s, rollout: paused.rollout, now: at(80) });
    assert.equal(resumed.rollout?.state, "Restarting");
    assert.deepEqual(
      resumed.events.map((e) => e.reason),
      ["RolloutResumed"],
    );
  });

  it("reverts at once when the target goes back to the fleet's version", () => {
    const started = plan({}).rollout as Rollout;
    const d = plan({ target: "1.0.0", rollout: started, workloads: fleet(20, { 0: { version: "1.1.0" } }) });
    assert.deepEqual(
      d.restart.map((r) => [r.workload.name, r.version]),
      [["w000", "1.0.0"]],
    );
    assert.deepEqual([d.rollout?.state, d.fleetVersion], ["Complete", "1.0.0"]);
  });
});
