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
import type { OtherPods, WorkloadView } from "./workloads.ts";

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
      restartedAt: v ? at(1).toISOString() : undefined,
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
    budgets: [],
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

  it("passes a wave that adds no workload to the step before it at once, on that step's analysis", () => {
    // 2 workloads, canary 10% and waves 50%, 100%: the canary and wave 1 are both w000.
    const small = { spec: spec(), workloads: fleet(2) };
    assert.deepEqual(
      stepTargets(small.spec, small.workloads).map((t) => t.length),
      [1, 1, 2],
    );
    const started = plan(small).rollout as Rollout;
    const canaryDone = fleet(2, { 0: { version: "1.1.0" } });
    const analysing = plan({ ...small, rollout: started, workloads: canaryDone, now: at(10) });
    assert.equal(analysing.rollout?.state, "Analysing");
    const wave1 = plan({ ...small, rollout: analysing.rollout, workloads: canaryDone, now: at(41) });
    assert.deepEqual([wave1.rollout?.step, wave1.rollout?.state], [1, "Restarting"]);
    // The next reconcile, a second later: wave 1 has nothing of its own to restart or watch.
    const wave2 = plan({ ...small, rollout: wave1.rollout, workloads: canaryDone, now: at(42) });
    assert.deepEqual([wave2.rollout?.step, wave2.rollout?.state], [2, "Restarting"]);
    assert.deepEqual(
      wave2.events.map((e) => [e.reason, e.message]),
      [["StepPassed", "Proxy 1.1.0: wave 1 adds no workload to canary and passes on its analysis"]],
    );
    const restarting = plan({ ...small, rollout: wave2.rollout, workloads: canaryDone, now: at(42) });
    assert.deepEqual(
      restarting.restart.map((r) => r.workload.name),
      ["w001"],
    );
    // A wave with workloads of its own still waits its interval.
    const bothDone = fleet(2, { 0: { version: "1.1.0" }, 1: { version: "1.1.0" } });
    const last = plan({ ...small, rollout: restarting.rollout, workloads: bothDone, now: at(50) });
    assert.equal(last.rollout?.state, "Analysing");
  });

  it("passes a canary whose selector matches no workload at once, and says so", () => {
    const noCanary = {
      spec: spec({ canary: { selector: { matchLabels: { tier: "none" } } } }),
      workloads: fleet(4),
    };
    const started = plan(noCanary);
    assert.deepEqual([started.rollout?.step, started.rollout?.state, started.restart], [1, "Restarting", []]);
    assert.deepEqual(
      started.events.map((e) => [e.reason, e.message]),
      [
        ["RolloutStarted", "Rolling out proxy 1.1.0 (from 1.0.0) to 4 workloads: canary first"],
        ["StepPassed", "Proxy 1.1.0: the canary has no workload and passes at once"],
      ],
    );
    const wave1 = plan({ ...noCanary, rollout: started.rollout, now: at(1) });
    assert.deepEqual(
      wave1.restart.map((r) => r.workload.name),
      ["w000", "w001"],
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
    const d = plan({ rollout: started, workloads: stuck, now: at(302) });
    assert.equal(d.rollout?.state, "RolledBack");
    assert.match(
      d.failure?.message ?? "",
      /2 workloads not ready 5m after their restart: Deployment ns0\/w000 \(0\/2 pods Ready on 1\.1\.0\)/,
    );
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

/** Every workload of `w` done on `version` (restarted at `restartedAt`). */
function allOn(w: WorkloadView[], version: string, restartedAt = at(1)): WorkloadView[] {
  return w.map((x) =>
    x.paused
      ? x
      : {
          ...x,
          templateVersion: version,
          restartedAt: restartedAt.toISOString(),
          pods: new Map([[version, { total: x.replicas, ready: x.replicas, restarts: 0 }]]),
        },
  );
}

/** Runs the plan over its own decisions, applying each restart as if it rolled out at once. */
function drive(over: Partial<RolloutInput>, apply = (w: WorkloadView[], _v: string[]) => w, seconds = 400) {
  let workloads = over.workloads ?? fleet(10);
  let rollout: Rollout | undefined = over.rollout;
  const restarted: string[] = [];
  const events: string[] = [];
  let d = plan({ ...over, workloads, rollout });
  for (let s = 0; s < seconds; s += 5) {
    d = plan({ ...over, workloads, rollout, now: at(s) });
    rollout = d.rollout;
    events.push(...d.events.map((e) => e.reason));
    const names = d.restart.map((r) => r.workload.name);
    restarted.push(...names);
    workloads = apply(
      workloads.map((w) =>
        names.includes(w.name) ? (allOn([w], d.restart[0]?.version ?? "", at(s))[0] as WorkloadView) : w,
      ),
      names,
    );
    if (rollout?.state === "Complete" || rollout?.state === "RolledBack" || rollout?.state === "Halted")
      break;
  }
  return { d, rollout, restarted, events, workloads };
}

const budget = (name: string, app: string, disruptionsAllowed = 0) => ({
  namespace: "ns0",
  name,
  selector: { matchLabels: { app } },
  disruptionsAllowed,
});
/** The fleet, with app labels and 4 replicas (so a restart takes a pod down). */
function labelled(n: number): WorkloadView[] {
  return fleet(n).map((w) => ({
    ...w,
    namespace: "ns0",
    replicas: 4,
    pods: new Map([["1.0.0", { total: 4, ready: 4, restarts: 0 }]]),
    templateLabels: { app: w.name },
  }));
}
const quick = (upgrade: Record<string, unknown> = {}) =>
  spec({
    canary: { percent: 20 },
    waves: [100],
    maxConcurrentRestarts: 5,
    analysis: { interval: "10s" },
    ...upgrade,
  });

describe("rollout plan with a real cluster's mix", () => {
  it("onBlocked Wait: the step waits for a blocked workload, names it and its budget, says so once", () => {
    const w = labelled(5);
    const r = drive({ spec: quick(), workloads: w, budgets: [budget("pdb-w003", "w003")] }, (x) => x, 200);
    assert.equal(r.rollout?.state, "Restarting", "still waiting; no deadline while only blocked");
    assert.ok(!r.restarted.includes("w003"));
    assert.equal(r.rollout?.blockedWorkloads, 1);
    assert.match(
      r.rollout?.message ?? "",
      /wave 1: 4\/5 workloads on 1\.1\.0; waiting for 1 workload blocked by a PodDisruptionBudget \(Deployment ns0\/w003: PodDisruptionBudget ns0\/pdb-w003 \(app=w003\) allows 0 disruptions/,
    );
    assert.deepEqual(r.rollout?.held?.[0]?.workload, "Deployment/ns/w003");
    assert.equal(r.events.filter((e) => e === "RolloutBlocked").length, 1);
    // The budget allows a disruption again: the workload restarts and the rollout completes.
    const freed = drive({
      spec: quick(),
      workloads: r.workloads,
      rollout: r.rollout,
      budgets: [budget("pdb-w003", "w003", 1)],
    });
    assert.equal(freed.rollout?.state, "Complete");
    assert.deepEqual(freed.restarted, ["w003"]);
  });

  it("onBlocked Skip: the rollout goes on without the blocked workload and reports it", () => {
    const r = drive({
      spec: quick({ onBlocked: "Skip" }),
      workloads: labelled(5),
      budgets: [budget("pdb", "w003")],
    });
    assert.equal(r.rollout?.state, "Complete");
    assert.deepEqual(r.restarted.sort(), ["w000", "w001", "w002", "w004"]);
    assert.equal(r.rollout?.skippedWorkloads, 1);
    assert.match(
      r.rollout?.message ?? "",
      /all 4 workloads on 1\.1\.0; 1 workload skipped \(Deployment ns0\/w003: DisruptionBudget\)/,
    );
    assert.equal(r.d.fleetVersion, "1.1.0");
  });

  it("onBlocked Fail: a block seen before anything restarts halts the rollout with nothing restarted", () => {
    const r = drive({
      spec: quick({ onBlocked: "Fail" }),
      workloads: labelled(5),
      budgets: [budget("pdb", "w003")],
    });
    assert.equal(r.rollout?.state, "Halted");
    assert.deepEqual(r.restarted, []);
    assert.match(
      r.rollout?.message ?? "",
      /Deployment ns0\/w003: PodDisruptionBudget ns0\/pdb.*nothing rolled back/,
    );
    assert.deepEqual(r.events, ["RolloutStarted", "RolloutBlocked"]);
  });

  it("onBlocked Fail: a block that appears mid-rollout halts it and rolls nothing back", () => {
    const s = quick({ onBlocked: "Fail" });
    const w = labelled(5);
    const canary = drive({ spec: s, workloads: w }, (x) => x, 12);
    assert.deepEqual(canary.restarted, ["w000"]);
    const r = drive({
      spec: s,
      workloads: canary.workloads,
      rollout: canary.rollout,
      budgets: [budget("pdb", "w003")],
    });
    assert.equal(r.rollout?.state, "Halted");
    assert.deepEqual(r.d.restart, [], "the canary is not rolled back");
  });

  it("never patches a paused Deployment, and completes without it, reporting it", () => {
    const w = labelled(5).map((x) => (x.name === "w002" ? { ...x, paused: true } : x));
    const r = drive({ spec: quick(), workloads: w });
    assert.equal(r.rollout?.state, "Complete");
    assert.ok(!r.restarted.includes("w002"));
    assert.equal(r.rollout?.totalWorkloads, 4);
    assert.match(r.rollout?.message ?? "", /Deployment ns0\/w002: Paused/);
  });

  it("rolls back only the workloads this rollout changed", () => {
    const w = labelled(5).map((x) =>
      x.name === "w004" ? { ...x, templateVersion: "0.9.0", restartedAt: "2026-01-01T00:00:00.000Z" } : x,
    );
    const s = quick({ canary: { percent: 40 } });
    const canary = drive({ spec: s, workloads: w }, (x) => x, 12);
    assert.deepEqual(canary.restarted, ["w000", "w001"]);
    const failing = (): AnalysisVerdict => ({ healthy: false, detail: "success rate 0.5 < 0.99" });
    const d = plan({
      spec: s,
      workloads: canary.workloads,
      rollout: canary.rollout,
      analyse: failing,
      now: at(20),
    });
    assert.equal(d.rollout?.state, "RolledBack");
    assert.deepEqual(
      d.restart.map((x) => [x.workload.name, x.version]),
      [
        ["w000", "1.0.0"],
        ["w001", "1.0.0"],
      ],
      "w004 (on 0.9.0 since long before) is not touched",
    );
  });

  it("fails a step on a certain failure once past its grace, naming pod, container and reason", () => {
    const s = quick();
    const canary = drive({ spec: s, workloads: labelled(5) }, (x) => x, 2);
    const broken = canary.workloads.map((x) =>
      x.name === "w000"
        ? {
            ...x,
            pods: new Map([["1.1.0", { total: 1, ready: 0, restarts: 0 }]]),
            rolledOut: false,
            failures: [
              {
                pod: "ns0/w000-abc-1",
                container: "trellis-proxy",
                reason: "ImagePullBackOff",
                message: 'Back-off pulling image "localhost/trellis/proxy:1.1.0"',
                version: "1.1.0",
                since: at(5).toISOString(),
              },
            ],
          }
        : x,
    );
    const early = plan({ spec: s, workloads: broken, rollout: canary.rollout, now: at(20) });
    assert.equal(early.rollout?.state, "Restarting", "within the grace");
    const d = plan({ spec: s, workloads: broken, rollout: canary.rollout, now: at(36) });
    assert.equal(d.rollout?.state, "RolledBack");
    assert.match(
      d.rollout?.message ?? "",
      /step 0 \(canary\): pod ns0\/w000-abc-1: container trellis-proxy ImagePullBackOff \(Back-off pulling image "localhost\/trellis\/proxy:1\.1\.0"\)/,
    );
  });

  it("counts a step's deadline from each workload's own restart", () => {
    const s = quick({ stepDeadline: "60s" });
    const started = plan({ spec: s, workloads: labelled(5) }).rollout as Rollout;
    const late = labelled(5).map((x) =>
      x.name === "w000"
        ? {
            ...x,
            templateVersion: "1.1.0",
            restartedAt: at(100).toISOString(),
            pods: new Map([["1.1.0", { total: 4, ready: 0, restarts: 0 }]]),
          }
        : x,
    );
    assert.equal(
      plan({ spec: s, workloads: late, rollout: started, now: at(150) }).rollout?.state,
      "Restarting",
    );
    assert.equal(
      plan({ spec: s, workloads: late, rollout: started, now: at(161) }).rollout?.state,
      "RolledBack",
    );
  });

  it("restarts workloads under one budget one at a time", () => {
    const w = labelled(4).map((x) => ({ ...x, templateLabels: { tier: "db" } }));
    const tier = {
      namespace: "ns0",
      name: "tier",
      selector: { matchLabels: { tier: "db" } },
      disruptionsAllowed: 1,
    };
    const s = quick({ strategy: "AllAtOnce" });
    const first = plan({ spec: s, workloads: w, budgets: [tier] });
    assert.deepEqual(
      first.restart.map((r) => r.workload.name),
      ["w000"],
    );
  });

  it("reports Jobs and bare pods as pending, and completes without waiting for them", () => {
    const others: OtherPods[] = [
      {
        kind: "Job",
        namespace: "ns0",
        name: "report",
        key: "Job/ns0/report",
        versions: new Map([["1.0.0", 1]]),
      },
      {
        kind: "Pod",
        namespace: "ns0",
        name: "debug",
        key: "Pod/ns0/debug",
        versions: new Map([["1.0.0", 1]]),
      },
    ];
    const r = drive({ spec: quick(), workloads: labelled(3), others });
    assert.equal(r.rollout?.state, "Complete");
    assert.equal(r.rollout?.pendingPods, 2);
    assert.match(
      r.rollout?.message ?? "",
      /2 pods pending until they end or are re-created \(Job ns0\/report, Pod ns0\/debug\)/,
    );
    assert.deepEqual(
      r.rollout?.held?.map((h) => [h.workload, h.reason]),
      [
        ["Job/ns0/report", "RunsToCompletion"],
        ["Pod/ns0/debug", "BarePod"],
      ],
    );
  });
});
