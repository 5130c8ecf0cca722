// spec.upgrade.approval Manual as decisions: what is pending, the plan's id and summary, when the
// proxies and the control plane wait, and that an approval covers exactly the plan it names.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Mesh, type MeshSpec, type MeshStatus, validateMeshSpec } from "../../api/index.ts";
import {
  decideApproval,
  holdControlPlane,
  type PendingChange,
  pendingChange,
  rolloutSteps,
  upgradePlanStatus,
} from "./upgrade-approval.ts";
import { planWorkloads } from "./workload-plan.ts";
import type { WorkloadView } from "./workloads.ts";

const NOW = new Date("2026-12-05T10:00:00Z");

function spec(over: Record<string, unknown> = {}, upgrade: Record<string, unknown> = {}): MeshSpec {
  const r = validateMeshSpec({
    version: "1.2.0",
    upgrade: { approval: "Manual", canary: { percent: 25 }, waves: [100], ...upgrade },
    ...over,
  });
  assert.ok(r.ok, r.errors.join("; "));
  return r.value;
}

const running: MeshStatus = {
  controlPlane: { version: "1.2.0" },
  proxies: { total: 8, updated: 8, summary: "8/8", version: "1.2.0" },
};

function fleet(n: number, paused: number[] = []): WorkloadView[] {
  return Array.from({ length: n }, (_, i) => ({
    kind: "Deployment" as const,
    namespace: "shop",
    name: `w${i}`,
    key: `Deployment/shop/w${i}`,
    templateVersion: undefined,
    labels: {},
    pods: new Map([["1.2.0", { total: 2, ready: 2, restarts: 0 }]]),
    replicas: 2,
    ...(paused.includes(i) ? { paused: true } : {}),
  }));
}

function decide(
  s: MeshSpec,
  status: MeshStatus,
  workloads: WorkloadView[],
  annotations: Record<string, string> = {},
) {
  const mesh: Pick<Mesh, "spec" | "status"> = { spec: s, status };
  const change = pendingChange(mesh, s);
  const planned = planWorkloads({
    workloads,
    budgets: [],
    target: change.proxies?.to ?? "1.2.0",
    onBlocked: "Wait",
    now: NOW,
  });
  return decideApproval({
    spec: s,
    status,
    annotations,
    change,
    steps: rolloutSteps(s, planned),
    planned,
    now: NOW,
  });
}

describe("upgrade approval", () => {
  it("pends a new control-plane version the skew policy allows and a proxy version no rollout began", () => {
    const mesh = (s: MeshSpec, status: MeshStatus = running) => pendingChange({ spec: s, status }, s);
    assert.deepEqual(mesh(spec({ version: "1.3.0" })), {
      controlPlane: { from: "1.2.0", to: "1.3.0" },
      proxies: { from: "1.2.0", to: "1.3.0" },
    });
    assert.deepEqual(mesh(spec({ proxy: { version: "1.2.1" } })), {
      proxies: { from: "1.2.0", to: "1.2.1" },
    });
    assert.deepEqual(
      mesh(spec({ version: "1.5.0", proxy: { version: "1.2.0" } })),
      {},
      "refused by the skew policy",
    );
    assert.deepEqual(mesh(spec()), {}, "nothing changes");
    assert.deepEqual(mesh(spec(), {}), {}, "an installation");
    const started: MeshStatus = {
      ...running,
      controlPlane: { version: "1.2.0", targetVersion: "1.3.0" },
      rollout: { fromVersion: "1.2.0", toVersion: "1.3.0", step: 0, steps: 2, state: "Restarting" },
    };
    assert.deepEqual(mesh(spec({ version: "1.3.0" }), started), {}, "both have started");
  });

  it("publishes the plan and holds the rollout until its id is approved; a changed plan needs its own approval", () => {
    const s = spec({ proxy: { version: "1.2.1" } });
    const waiting = decide(s, running, fleet(8, [7]));
    assert.equal(waiting.holdProxies, true);
    assert.equal(waiting.plan?.state, "AwaitingApproval");
    assert.equal(waiting.plan?.summary, "proxies 1.2.0 → 1.2.1: 7 workloads in 2 steps (2, 5), 1 skipped");
    assert.deepEqual(waiting.plan?.steps, [
      { name: "canary", workloads: 2, pods: 4 },
      { name: "wave 1", workloads: 5, pods: 10 },
    ]);
    assert.deepEqual(
      waiting.events.map((e) => e.reason),
      ["UpgradeAwaitingApproval"],
    );
    const id = waiting.plan?.id ?? "";
    assert.match(id, /^[0-9a-f]{12}$/);
    const again = decide(s, { ...running, upgradePlan: waiting.plan }, fleet(8, [7]));
    assert.deepEqual([again.plan?.id, again.events.length], [id, 0], "same plan, announced once");
    const grown = decide(s, { ...running, upgradePlan: waiting.plan }, fleet(9, [7]), {
      "trellis.dev/approve-upgrade": id,
    });
    assert.notEqual(grown.plan?.id, id, "another workload: another plan");
    assert.equal(grown.holdProxies, true, "the old approval does not cover it");
    const approved = decide(s, { ...running, upgradePlan: waiting.plan }, fleet(8, [7]), {
      "trellis.dev/approve-upgrade": id,
    });
    assert.deepEqual(
      [approved.holdProxies, approved.plan?.state, approved.events[0]?.reason],
      [false, "Approved", "UpgradeApproved"],
    );
  });

  it("an approved plan stays approved while the control plane is still to start; Automatic never waits", () => {
    const s = spec({ version: "1.3.0" });
    const waiting = decide(s, running, fleet(4));
    assert.equal(
      waiting.plan?.summary,
      "control plane 1.2.0 → 1.3.0; proxies 1.2.0 → 1.3.0: 4 workloads in 2 steps (1, 3)",
    );
    const mesh = (status: MeshStatus) => ({ spec: s, status });
    assert.equal(holdControlPlane(mesh({ ...running, upgradePlan: waiting.plan }), s), true);
    const approved = decide(s, { ...running, upgradePlan: waiting.plan }, fleet(4), {
      "trellis.dev/approve-upgrade": waiting.plan?.id ?? "",
    });
    // The rollout started; the control plane has not: still approved, nothing announced again.
    const started: MeshStatus = {
      ...running,
      upgradePlan: approved.plan,
      rollout: { fromVersion: "1.2.0", toVersion: "1.3.0", step: 0, steps: 2, state: "Restarting" },
    };
    const later = decide(s, started, fleet(5));
    assert.deepEqual(
      [later.plan?.state, later.plan?.id, later.events.length],
      ["Approved", waiting.plan?.id, 0],
    );
    assert.equal(holdControlPlane(mesh(started), s), false);
    const automatic = spec({ version: "1.3.0" }, { approval: "Automatic" });
    assert.deepEqual(decide(automatic, running, fleet(4)), {
      plan: undefined,
      holdProxies: false,
      events: [],
    });
    assert.equal(holdControlPlane({ spec: automatic, status: running }, automatic), false);
  });

  it("the id is what the plan does: the same versions and steps give the same id", () => {
    const change: PendingChange = { proxies: { from: "1.0.0", to: "1.1.0" } };
    const s = spec();
    const planned = planWorkloads({
      workloads: fleet(3),
      budgets: [],
      target: "1.1.0",
      onBlocked: "Wait",
      now: NOW,
    });
    const a = upgradePlanStatus(change, rolloutSteps(s, planned), planned, NOW);
    const b = upgradePlanStatus(change, rolloutSteps(s, planned), planned, new Date(0));
    assert.equal(a.id, b.id);
    const other = upgradePlanStatus(
      { proxies: { from: "1.0.0", to: "1.1.1" } },
      rolloutSteps(s, planned),
      planned,
      NOW,
    );
    assert.notEqual(a.id, other.id);
  });
});
