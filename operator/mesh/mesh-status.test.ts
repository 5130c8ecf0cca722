// The Mesh conditions when a proxy rollout and a trust-anchor rotation overlap: a failed rollout
// must show as Degraded even while the rotation holds the mesh in progress.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MeshStatus } from "../../api/index.ts";
import type { ControlPlanePlan } from "./control-plane-plan.ts";
import {
  approvalBlocker,
  type Blocker,
  dataPlaneCondition,
  meshStatus,
  pickBlocker,
  rolloutBlocker,
} from "./mesh-status.ts";

const rotating: Blocker = {
  reason: "TrustAnchorRotation",
  message: "IssuerSwitched: 1/4 proxies hold a leaf from the new anchor",
  degraded: false,
  phase: "RotatingTrustAnchor",
  keepsReady: true,
};

const rollout = (state: string): MeshStatus["rollout"] => ({
  fromVersion: "0.1.1",
  toVersion: "0.1.2",
  step: 0,
  steps: 2,
  state,
  message: "canary: pods not ready after 45s",
});

const readyPlan: ControlPlanePlan = {
  versions: ["0.1.0"],
  state: { version: "0.1.0" },
  phase: "Ready",
  reason: "Available",
  message: "control plane 0.1.0 is available",
  events: [],
};

const condition = (status: MeshStatus, type: string) => status.conditions?.find((c) => c.type === type);

describe("pickBlocker", () => {
  it("shows a failed rollout as Degraded during a trust-anchor rotation", () => {
    const blocker = pickBlocker(rotating, rolloutBlocker(rollout("RolledBack")));
    assert.equal(blocker?.reason, "RolloutFailed");
    const status = meshStatus({
      previous: undefined,
      plan: readyPlan,
      generation: 3,
      components: [],
      operatorVersion: "0.1.0",
      ...(blocker ? { blocker } : {}),
      now: new Date("2026-11-26T00:00:00Z"),
    });
    assert.equal(condition(status, "Degraded")?.status, "True");
    assert.equal(condition(status, "Degraded")?.reason, "RolloutFailed");
    assert.match(condition(status, "Degraded")?.message ?? "", /pods not ready after 45s/);
  });

  it("keeps the rotation first while the rollout is healthy, and nothing when neither blocks", () => {
    assert.equal(pickBlocker(rotating, rolloutBlocker(rollout("Restarting")))?.reason, "TrustAnchorRotation");
    assert.equal(pickBlocker(undefined, rolloutBlocker(rollout("Analysing")))?.reason, "RollingOutProxy");
    assert.equal(pickBlocker(undefined, rolloutBlocker(rollout("Complete"))), undefined);
  });

  it("names the workloads a rollout waits for, and the budgets, not its counters", () => {
    const blocked = rolloutBlocker({
      ...(rollout("Restarting") as NonNullable<MeshStatus["rollout"]>),
      step: 2,
      blockedWorkloads: 1,
      held: [
        {
          workload: "StatefulSet/shop/db",
          reason: "DisruptionBudget",
          message: "PodDisruptionBudget shop/db (app=db) allows 0 disruptions",
        },
        { workload: "Deployment/shop/frozen", reason: "Paused", message: "the Deployment is paused" },
      ],
    });
    assert.equal(blocked?.reason, "RolloutBlocked");
    assert.equal(
      blocked?.message,
      "proxy 0.1.1 → 0.1.2: wave 2 restarting, waiting for StatefulSet shop/db (PodDisruptionBudget shop/db (app=db) allows 0 disruptions)",
    );
  });

  it("an upgrade awaiting approval keeps the mesh Ready, not Progressing, in phase AwaitingApproval", () => {
    const blocker = approvalBlocker({
      id: "25edaaec2bf4",
      state: "AwaitingApproval",
      summary: "proxies 0.1.0 → 0.2.0: 7 workloads in 3 steps (2, 2, 3)",
    });
    assert.ok(blocker);
    assert.equal(approvalBlocker({ id: "x", state: "Approved", summary: "" }), undefined);
    const status = meshStatus({
      previous: undefined,
      plan: readyPlan,
      generation: 3,
      components: [],
      operatorVersion: "0.1.0",
      blocker,
      now: new Date("2026-11-26T00:00:00Z"),
    });
    assert.equal(status.phase, "AwaitingApproval");
    assert.equal(condition(status, "Ready")?.status, "True");
    assert.equal(condition(status, "Progressing")?.status, "False");
    assert.equal(condition(status, "Degraded")?.status, "False");
  });
});

describe("DataPlaneIncomplete", () => {
  const owner = (workload: string, missing: number, outOfSkew = 0) => ({ workload, missing, outOfSkew });
  const proxies = (incomplete: ReturnType<typeof owner>[]): MeshStatus["proxies"] => ({
    total: 40,
    updated: 40,
    summary: "40/40",
    missing: incomplete.reduce((n, o) => n + o.missing, 0),
    outOfSkew: incomplete.reduce((n, o) => n + o.outOfSkew, 0),
    incomplete,
  });

  it("names the totals and the first workloads as the Warning Event does, and what is done about them", () => {
    const c = dataPlaneCondition(
      proxies([
        owner("Deployment/shop/web", 2),
        owner("Pod/shop/debug", 1),
        owner("StatefulSet/db/pg", 0, 1),
      ]),
      { state: "Restarting", message: "" } as MeshStatus["repair"],
      "Restart",
    );
    assert.deepEqual(c, {
      status: true,
      reason: "ProxiesMissing",
      message:
        "3 pods without a proxy, 1 proxy outside the skew policy: Deployment shop/web (2), Pod shop/debug (1), StatefulSet db/pg (1); a repair restarts their workloads",
    });
  });

  it("counts the workloads it does not name while status holds them all, and says only 'more' past what it holds", () => {
    const four = [1, 2, 3, 4].map((i) => owner(`Deployment/shop/w${i}`, 0, 1));
    const some = dataPlaneCondition(proxies(four), undefined, "Report");
    assert.equal(some.reason, "ProxiesOutOfSkew");
    assert.match(some.message, /Deployment shop\/w3 \(1\), and 1 more; spec\.injection\.repair is Report/);
    const held = [1, 2, 3, 4, 5].map((i) => owner(`Deployment/shop/w${i}`, 1));
    assert.match(dataPlaneCondition(proxies(held), undefined, "Restart").message, /w3 \(1\), and more; /);
  });

  it("is False once every pod carries a proxy within the skew policy", () => {
    assert.equal(dataPlaneCondition(proxies([]), undefined, "Restart").status, false);
  });
});
