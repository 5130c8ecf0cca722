// What the rollout does with each workload: restart, skip (with the reason) or blocked by a
// PodDisruptionBudget — per workload, with label-selector semantics, and never blocked by its
// own restarts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type DisruptionBudgetView,
  type OnBlocked,
  planWorkloads,
  podsTakenDown,
  type WorkloadAction,
} from "./workload-plan.ts";
import type { WorkloadKind, WorkloadView } from "./workloads.ts";

const NOW = new Date("2026-11-25T12:00:00Z");

function workload(
  name: string,
  over: Partial<WorkloadView> = {},
  kind: WorkloadKind = "Deployment",
): WorkloadView {
  return {
    kind,
    namespace: "shop",
    name,
    key: `${kind}/shop/${name}`,
    templateVersion: undefined,
    labels: {},
    pods: new Map([["1.0.0", { total: 2, ready: 2, restarts: 0 }]]),
    replicas: 2,
    templateLabels: { app: name },
    podLabels: [
      { app: name, "pod-template-hash": "abc" },
      { app: name, "pod-template-hash": "abc" },
    ],
    ...over,
  };
}

const pdb = (name: string, selector: DisruptionBudgetView["selector"], disruptionsAllowed = 0) => ({
  namespace: "shop",
  name,
  selector,
  disruptionsAllowed,
});

function actions(
  workloads: WorkloadView[],
  budgets: DisruptionBudgetView[] = [],
  onBlocked: OnBlocked = "Wait",
): Record<string, WorkloadAction> {
  const planned = planWorkloads({ workloads, budgets, target: "1.1.0", onBlocked, now: NOW });
  return Object.fromEntries(planned.map((p) => [p.workload.name, p.action]));
}

// A rolling update that takes a pod down (the default strategy takes 1 of 4 down).
const four = { replicas: 4 };

describe("workload plan", () => {
  it("a budget blocks only the workloads whose pods it selects (issue 17, defect 1)", () => {
    const a = actions(
      [workload("api", four), workload("db", four)],
      [pdb("db", { matchLabels: { app: "db" } })],
    );
    assert.deepEqual(a.api, { action: "Restart" });
    assert.equal(a.db?.action, "Blocked");
    assert.match(
      (a.db as { message: string }).message,
      /PodDisruptionBudget shop\/db \(app=db\) allows 0 disruptions; its restart takes down 1 pod at a time/,
    );
  });

  it("reads a budget of only matchExpressions as that selector, not as an empty one", () => {
    const a = actions(
      [workload("api", four), workload("db", four)],
      [pdb("db", { matchExpressions: [{ key: "app", operator: "In", values: ["db"] }] })],
    );
    assert.deepEqual([a.api?.action, a.db?.action], ["Restart", "Blocked"]);
    const empty = actions([workload("api", four)], [pdb("all", {})]);
    assert.equal(empty.api?.action, "Blocked", "an empty selector selects every pod");
    const absent = actions([workload("api", four)], [pdb("none", undefined)]);
    assert.equal(absent.api?.action, "Restart", "an absent selector selects none");
  });

  it("matches a budget on pod-level labels too (a StatefulSet pod by name)", () => {
    const db = workload(
      "db",
      { podLabels: [{ app: "db", "statefulset.kubernetes.io/pod-name": "db-0" }] },
      "StatefulSet",
    );
    const a = actions([db], [pdb("db-0", { matchLabels: { "statefulset.kubernetes.io/pod-name": "db-0" } })]);
    assert.equal(a.db?.action, "Blocked");
  });

  it("never blocks a restart that takes no pod down (surge-only Deployment) or one the budget allows", () => {
    const surge = workload("web", { replicas: 2, strategy: { maxUnavailable: 0, maxSurge: 1 } });
    const small = workload("small", { replicas: 2 }); // 25% of 2 rounds down to 0 unavailable
    const db = workload("db", { replicas: 3 }, "StatefulSet");
    const a = actions([surge, small, db], [pdb("all", {}, 0), pdb("db", { matchLabels: { app: "db" } }, 1)]);
    assert.deepEqual(a.web, { action: "Restart" });
    assert.deepEqual(a.small, { action: "Restart" });
    assert.equal(a.db?.action, "Blocked", "the empty budget allows 0");
    const allowed = actions([db], [pdb("db", { matchLabels: { app: "db" } }, 1)]);
    assert.deepEqual(allowed.db, { action: "Restart" });
  });

  it("takes down what the workload's own strategy does", () => {
    const d = (strategy: WorkloadView["strategy"], replicas = 4) =>
      podsTakenDown(workload("x", { strategy, replicas }));
    assert.equal(d(undefined), 1, "25% of 4");
    assert.equal(d({ type: "Recreate" }), 4);
    assert.equal(d({ maxUnavailable: "50%", maxSurge: 0 }), 2);
    assert.equal(d({ maxUnavailable: 0, maxSurge: 0 }), 1, "Kubernetes makes both-zero maxUnavailable 1");
    assert.equal(podsTakenDown(workload("s", { replicas: 3 }, "StatefulSet")), 1);
    assert.equal(
      podsTakenDown(
        workload("ds", { replicas: 5, strategy: { maxSurge: 1, maxUnavailable: 0 } }, "DaemonSet"),
      ),
      0,
    );
    assert.equal(podsTakenDown(workload("z", { replicas: 0 })), 0);
  });

  it("queues behind its own restart under the same budget instead of calling it blocked", () => {
    const inFlight = workload("a", {
      ...four,
      templateVersion: "1.1.0",
      pods: new Map([["1.1.0", { total: 4, ready: 2, restarts: 0 }]]),
      templateLabels: { tier: "db" },
    });
    const next = workload("b", { ...four, templateLabels: { tier: "db" } });
    const planned = planWorkloads({
      workloads: [inFlight, next],
      budgets: [pdb("tier", { matchLabels: { tier: "db" } }, 0)],
      target: "1.1.0",
      onBlocked: "Fail",
      now: NOW,
    });
    assert.deepEqual(
      planned.map((p) => [p.action.action, p.budgets]),
      [
        ["Restart", ["shop/tier"]],
        ["Restart", ["shop/tier"]],
      ],
    );
  });

  it("onBlocked Skip turns a block into a skip with the same reason", () => {
    const a = actions([workload("db", four)], [pdb("db", { matchLabels: { app: "db" } })], "Skip");
    assert.equal(a.db?.action, "Skip");
    assert.equal((a.db as { reason: string }).reason, "DisruptionBudget");
  });

  it("skips what a template patch cannot restart, with the reason", () => {
    const failing = workload("crashy", {
      failures: [
        {
          pod: "shop/crashy-1",
          container: "app",
          reason: "CrashLoopBackOff",
          version: "1.0.0",
          since: "2026-11-25T11:00:00Z",
        },
      ],
    });
    const a = actions([
      workload("paused", { paused: true }),
      workload("optout", { optedOut: true }),
      workload("host", { hostNetwork: true }),
      workload("ondelete", { strategy: { type: "OnDelete" } }, "StatefulSet"),
      workload("parted", { strategy: { partition: 1 } }, "StatefulSet"),
      failing,
      workload("fresh", {
        failures: [
          {
            pod: "shop/fresh-1",
            container: "app",
            reason: "ErrImagePull",
            version: "1.0.0",
            since: "2026-11-25T11:59:50Z",
          },
        ],
      }),
    ]);
    const reasons = Object.fromEntries(
      Object.entries(a).map(([k, v]) => [k, v.action === "Restart" ? "Restart" : v.reason]),
    );
    assert.deepEqual(reasons, {
      paused: "Paused",
      optout: "OptedOut",
      host: "HostNetwork",
      ondelete: "OnDeleteStrategy",
      parted: "Partitioned",
      crashy: "Failing",
      fresh: "Restart",
    });
    assert.match(
      (a.crashy as { message: string }).message,
      /pod shop\/crashy-1: container app CrashLoopBackOff/,
    );
  });

  it("does not skip a workload already done on the version", () => {
    const done = workload("paused", {
      paused: true,
      templateVersion: "1.1.0",
      pods: new Map([["1.1.0", { total: 2, ready: 2, restarts: 0 }]]),
    });
    assert.deepEqual(actions([done]).paused, { action: "Restart" });
  });
});
