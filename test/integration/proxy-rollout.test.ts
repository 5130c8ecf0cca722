// A proxy rollout across meshed workloads on KWOK, through the real injector and API server: a
// canary first, then waves, each workload restarted exactly once; the operator killed in the
// middle of a wave resumes without restarting anything twice; a broken proxy version is caught
// in the canary and rolled back, with only the canary cohort touched. (The same code at 10,000
// pods runs in bench/rollout-scale.bench.ts.)
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort, LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { meshEvents } from "../mesh-observe.ts";
import { installCrds, type OperatorProcess, startInjector, startOperator } from "../operator-process.ts";

const WORKLOADS = 10;

interface RolloutView {
  state?: string;
  step?: number;
  toVersion?: string;
  message?: string;
}

describe("canaried proxy rollout", { timeout: 420_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  let injectorUrl: string;
  const group = new ProcessGroup();

  const mesh = () =>
    JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as {
      status?: {
        rollout?: RolloutView;
        proxies?: { summary?: string; version?: string };
        conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
      };
    };
  const rollout = () => mesh().status?.rollout ?? {};
  /** ReplicaSets per Deployment: 1 + the number of times it was restarted. */
  const replicaSetCounts = () => {
    const out = cluster.kubectl([
      "get",
      "rs",
      "-A",
      "-l",
      "app",
      "-o",
      "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.ownerReferences[0].name}{'\\n'}{end}",
    ]);
    const counts = new Map<string, number>();
    for (const line of out.trim().split("\n")) counts.set(line, (counts.get(line) ?? 0) + 1);
    return counts;
  };
  const podVersions = () =>
    cluster
      .kubectl([
        "get",
        "pods",
        "-A",
        "-l",
        "app",
        "-o",
        "jsonpath={range .items[*]}{.metadata.labels.trellis\\.dev/proxy-version}{'\\n'}{end}",
      ])
      .trim()
      .split("\n");
  const events = (reason: string) =>
    cluster
      .kubectl([
        "get",
        "events",
        "--field-selector",
        `involvedObject.kind=Mesh,reason=${reason}`,
        "-o",
        "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
      ])
      .trim();
  const eventCounts = (reason: string) => meshEvents(cluster, reason).map((e) => e.count);

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 3 });
    await installCrds(cluster);
    const port = await freePort();
    injectorUrl = `--injector-url=https://127.0.0.1:${port}/inject`;
    operator = await startOperator(cluster, ["--no-leader-elect", injectorUrl]);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: 1.0.0
  upgrade: { canary: { percent: 20 }, waves: [60, 100], maxConcurrentRestarts: 2, analysis: { interval: 3s }, stepDeadline: 25s }
`,
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
    await startInjector(cluster, group, port);
    for (const ns of ["shop", "bank"]) {
      cluster.kubectl(["create", "namespace", ns]);
      cluster.kubectl(["annotate", "namespace", ns, "trellis.dev/inject=enabled"]);
    }
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < WORKLOADS; i++) {
      const ns = i % 2 === 0 ? "shop" : "bank";
      cluster.kubectl([
        "-n",
        ns,
        "create",
        "deployment",
        `app-${i}`,
        "--image=localhost/app:1",
        "--replicas=2",
        "--port=8080",
      ]);
    }
    await waitFor(
      async () => mesh().status?.proxies?.summary === `${WORKLOADS * 2}/${WORKLOADS * 2}`,
      60_000,
      "all pods injected",
    );
  });
  after(async () => {
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("rolls a new proxy version out through the canary and the waves, restarting each workload once", async () => {
    assert.ok(podVersions().every((v) => v === "1.0.0"));
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      '{"spec":{"proxy":{"version":"1.1.0"}}}',
    ]);
    // Kill the operator in the middle of a wave; its successor resumes from status and the cluster.
    await waitFor(async () => (rollout().step ?? 0) >= 1, 90_000, "the first wave");
    await operator.kill();
    operator = await startOperator(cluster, ["--no-leader-elect", injectorUrl]);
    await waitFor(async () => rollout().state === "Complete", 120_000, "rollout complete").catch(
      (err: Error) => {
        throw new Error(`${err.message}: ${JSON.stringify(mesh().status)}`);
      },
    );
    await waitFor(
      async () => podVersions().length === WORKLOADS * 2 && podVersions().every((v) => v === "1.1.0"),
      60_000,
      "every pod on 1.1.0",
    );
    for (const [workload, count] of replicaSetCounts())
      assert.equal(count, 2, `${workload} restarted exactly once`);
    assert.equal(mesh().status?.proxies?.summary, `${WORKLOADS * 2}/${WORKLOADS * 2}`);
    // Once per transition, across the operator's restart and reconciles on a stale cache.
    assert.deepEqual(eventCounts("RolloutStarted"), [1]);
    assert.deepEqual(eventCounts("StepPassed"), [1, 1, 1], "canary and two waves");
    assert.deepEqual(eventCounts("RolloutComplete"), [1]);
    assert.deepEqual(eventCounts("Installed"), [1]);
    assert.match(events("RolloutComplete"), /Every meshed workload runs proxy 1\.1\.0/);
    assert.match(cluster.kubectl(["get", "mesh", "default"]), /20\/20/);
  });

  it("catches a broken proxy in the canary and rolls only the canary back", async () => {
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      '{"spec":{"proxy":{"version":"1.2.0-never-ready"}}}',
    ]);
    await waitFor(async () => rollout().state === "RolledBack", 90_000, "rollback").catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(mesh().status)}`);
    });
    const degraded = mesh().status?.conditions?.find((c) => c.type === "Degraded");
    assert.equal(degraded?.status, "True");
    assert.equal(degraded?.reason, "RolloutFailed");
    assert.match(
      degraded?.message ?? "",
      /2 workloads not ready 25s after their restart: Deployment bank\/app-1 \(0\/2 pods Ready on 1\.2\.0-never-ready\), Deployment bank\/app-3 \(0\/2 pods Ready/,
    );
    await waitFor(
      async () => podVersions().length === WORKLOADS * 2 && podVersions().every((v) => v === "1.1.0"),
      60_000,
      "everything back on 1.1.0",
    );
    const touched = [...replicaSetCounts().values()].filter((n) => n > 2).length;
    assert.equal(touched, 2, "only the canary cohort (20% of 10 workloads) was restarted and rolled back");
    assert.match(events("RolledBack"), /rolled back to 1\.1\.0 on 2 workloads/);
  });
});
