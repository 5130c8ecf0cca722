// A proxy rollout over what a real meshed namespace holds, on KWOK through the real injector and
// API server: Deployments (one under a PodDisruptionBudget that a surge-only rolling update
// respects), a StatefulSet whose budget (matchExpressions only) allows no disruption, a
// DaemonSet, a paused Deployment, one scaled to zero, one opted out, one on the host's network,
// an OnDelete StatefulSet, a Deployment whose pods already fail, a running Job, a CronJob's Job,
// a finished Job and a bare pod. Restarts are counted per workload (ReplicaSets,
// ControllerRevisions, pod UIDs): every restartable workload restarted exactly once, nothing
// the plan could see would not succeed restarted at all. Then onBlocked: Fail halts before
// restarting anything, and an image that is not there fails the canary within its grace, not
// at the step deadline, rolling back only what it changed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort, LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { meshEvents, templateRevisions } from "../mesh-observe.ts";
import { installCrds, type OperatorProcess, startInjector, startOperator } from "../operator-process.ts";

const NS = "mix";

interface MeshView {
  status?: {
    rollout?: {
      state?: string;
      step?: number;
      message?: string;
      blockedWorkloads?: number;
      skippedWorkloads?: number;
      pendingPods?: number;
      held?: Array<{ workload: string; reason: string; message: string }>;
    };
    proxies?: { summary?: string; total?: number; updated?: number; pending?: number; skipped?: number };
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

const deployment = (name: string, extra = "", podSpec = "", replicas = 2, templateMeta = "") => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${NS} }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  ${extra}
  template:
    metadata: { labels: { app: ${name} }${templateMeta} }
    spec: { ${podSpec} containers: [{ name: app, image: "localhost/app:1", ports: [{ containerPort: 8080 }] }] }
---`;

const statefulSet = (name: string, extra = "") => `
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: ${name}, namespace: ${NS} }
spec:
  replicas: 2
  serviceName: ${name}
  selector: { matchLabels: { app: ${name} } }
  ${extra}
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: app, image: "localhost/store:1", ports: [{ containerPort: 5432 }] }] }
---`;

const job = (name: string, image: string) => `
apiVersion: batch/v1
kind: Job
metadata: { name: ${name}, namespace: ${NS} }
spec:
  backoffLimit: 0
  template:
    metadata: { labels: { job: ${name} } }
    spec: { restartPolicy: Never, containers: [{ name: run, image: "${image}" }] }
---`;

const MIX = [
  deployment("api"),
  deployment("db"),
  `
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: db, namespace: ${NS} }
spec: { maxUnavailable: 0, selector: { matchLabels: { app: db } } }
---`,
  statefulSet("ledger"),
  `
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: ledger, namespace: ${NS} }
spec: { maxUnavailable: 0, selector: { matchExpressions: [{ key: app, operator: In, values: [ledger] }] } }
---`,
  `
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: agent, namespace: ${NS} }
spec:
  selector: { matchLabels: { app: agent } }
  template:
    metadata: { labels: { app: agent } }
    spec: { containers: [{ name: agent, image: "localhost/agent:1" }] }
---`,
  deployment("frozen", "", "", 1),
  deployment("idle", "", "", 0),
  deployment("legacy", "", "", 1, ", annotations: { trellis.dev/inject: disabled }"),
  deployment("hostnet", "", "hostNetwork: true,", 1),
  statefulSet("sticky", "updateStrategy: { type: OnDelete }"),
  job("batch", "localhost/runs-forever:1"),
  job("done", "localhost/once:1"),
  `
apiVersion: batch/v1
kind: CronJob
metadata: { name: nightly, namespace: ${NS} }
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata: { labels: { job: nightly } }
        spec: { restartPolicy: Never, containers: [{ name: run, image: "localhost/runs-forever:1" }] }
---`,
  `
apiVersion: v1
kind: Pod
metadata: { name: debug, namespace: ${NS}, labels: { run: debug } }
spec: { containers: [{ name: shell, image: "localhost/debug:1" }] }
`,
].join("\n");

describe("a proxy rollout over a real namespace's mix of workloads", { timeout: 600_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  const group = new ProcessGroup();

  const mesh = () => JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as MeshView;
  const rollout = () => mesh().status?.rollout ?? {};
  const patchMesh = (spec: string) =>
    cluster.kubectl(["patch", "mesh", "default", "--type=merge", "-p", `{"spec":${spec}}`]);
  const revisions = () => templateRevisions(cluster, NS);
  const uids = (selector: string) =>
    cluster
      .kubectl(["-n", NS, "get", "pods", "-l", selector, "-o", "jsonpath={.items[*].metadata.uid}"])
      .trim();
  const events = (reason: string) => meshEvents(cluster, reason);
  const failWith = (what: string) => (err: Error) => {
    throw new Error(`${err.message} (${what}): ${JSON.stringify(mesh().status)}`);
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 3 });
    await installCrds(cluster);
    const port = await freePort();
    operator = await startOperator(cluster, [
      "--no-leader-elect",
      `--injector-url=https://127.0.0.1:${port}/inject`,
    ]);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: 1.0.0
  upgrade: { canary: { percent: 20 }, waves: [50, 100], maxConcurrentRestarts: 5, analysis: { interval: 3s } }
`,
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
    await startInjector(cluster, group, port);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS}, annotations: { trellis.dev/inject: enabled } }\n`,
    );
    await new Promise((r) => setTimeout(r, 1500)); // the injector's namespace cache catches up
    // First the Deployment whose pods fail (its image is not there): its failure must be older
    // than the grace when the rollout starts, so that the plan sees it.
    cluster.kubectl(
      ["apply", "-f", "-"],
      deployment("broken", "", "", 1).replace('"localhost/app:1"', '"localhost/no-such-image:1"'),
    );
    cluster.kubectl(["apply", "-f", "-"], MIX);
    cluster.kubectl(["-n", NS, "create", "job", "nightly-manual", "--from=cronjob/nightly"]);
    for (const d of ["api", "db", "frozen"])
      await cluster.kubectlAsync(["-n", NS, "rollout", "status", `deployment/${d}`, "--timeout=90s"]);
    cluster.kubectl(["-n", NS, "rollout", "pause", "deployment/frozen"]);
    // Injected and running: api 2, db 2, ledger 2, agent 3, frozen 1, sticky 2, broken 1, batch 1,
    // nightly-manual 1, debug 1; and the finished Job "done".
    const injected = () =>
      cluster
        .kubectl(["-n", NS, "get", "pods", "-l", "trellis.dev/proxy-version", "-o", "name"])
        .trim()
        .split("\n");
    const succeeded = () =>
      cluster.kubectl(["-n", NS, "get", "pods", "-l", "job=done", "-o", "jsonpath={.items[0].status.phase}"]);
    await waitFor(
      async () => injected().length === 17 && succeeded() === "Succeeded",
      90_000,
      "17 injected pods",
    );
    const started = cluster.kubectl([
      "-n",
      NS,
      "get",
      "pods",
      "-l",
      "app=broken",
      "-o",
      "jsonpath={.items[0].status.startTime}",
    ]);
    const waitMs = Date.parse(started) + 31_000 - Date.now();
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
  });
  after(async () => {
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("counts running proxies only: a finished Job's pod leaves the PROXIES totals", async () => {
    await waitFor(async () => mesh().status?.proxies?.summary === "16/16", 30_000, "16 proxies").catch(
      failWith("totals"),
    );
  });

  it("restarts every restartable workload once, waits for the blocked one by name, leaves the rest and says so", async () => {
    const before = revisions();
    const jobPods = uids("job in (batch, nightly)");
    const barePod = uids("run=debug");
    assert.equal(jobPods.split(" ").length, 2);
    patchMesh('{"proxy":{"version":"1.1.0"}}');
    // The StatefulSet's budget allows no disruption: its wave waits, naming it and the budget.
    await waitFor(
      async () => (rollout().blockedWorkloads ?? 0) > 0 && /3\/4 workloads/.test(rollout().message ?? ""),
      120_000,
      "the blocked wave",
    ).catch(failWith("blocked"));
    const blocked = mesh();
    assert.match(
      blocked.status?.rollout?.message ?? "",
      /wave 2: 3\/4 workloads on 1\.1\.0; waiting for 1 workload blocked by a PodDisruptionBudget \(StatefulSet mix\/ledger: PodDisruptionBudget mix\/ledger \(app in \(ledger\)\) allows 0 disruptions; its restart takes down 1 pod at a time\)/,
    );
    const progressing = blocked.status?.conditions?.find((c) => c.type === "Progressing");
    assert.equal(progressing?.reason, "RolloutBlocked");
    assert.match(
      progressing?.message ?? "",
      /waiting for StatefulSet mix\/ledger \(PodDisruptionBudget mix\/ledger/,
    );
    const mid = revisions();
    for (const w of ["Deployment/api", "Deployment/db", "DaemonSet/agent"])
      assert.equal(mid[w], (before[w] ?? 0) + 1, `${w} restarted while the StatefulSet waits`);
    assert.equal(mid["StatefulSet/ledger"], before["StatefulSet/ledger"], "the blocked StatefulSet waits");
    // The budget allows a disruption again: the StatefulSet restarts, the rollout completes.
    cluster.kubectl([
      "-n",
      NS,
      "patch",
      "pdb",
      "ledger",
      "--type=merge",
      "-p",
      '{"spec":{"maxUnavailable":1}}',
    ]);
    await waitFor(async () => rollout().state === "Complete", 180_000, "rollout complete").catch(
      failWith("complete"),
    );
    await waitFor(
      async () => mesh().status?.proxies?.summary === "9/16 (3 pending, 4 skipped)",
      60_000,
      "counts",
    ).catch(failWith("counts"));
    const after = revisions();
    for (const w of ["Deployment/api", "Deployment/db", "DaemonSet/agent", "StatefulSet/ledger"])
      assert.equal(after[w], (before[w] ?? 0) + 1, `${w} restarted exactly once`);
    for (const w of [
      "Deployment/frozen",
      "Deployment/idle",
      "Deployment/legacy",
      "Deployment/hostnet",
      "Deployment/broken",
      "StatefulSet/sticky",
    ])
      assert.equal(after[w], before[w], `${w} not restarted`);
    assert.equal(uids("job in (batch, nightly)"), jobPods, "running Job pods are never killed");
    assert.equal(uids("run=debug"), barePod, "a bare pod is never killed");
    const frozen = cluster.kubectl([
      "-n",
      NS,
      "get",
      "deployment",
      "frozen",
      "-o",
      "jsonpath={.spec.template.metadata.annotations}",
    ]);
    assert.equal(frozen, "", "a paused Deployment is never patched");
    const done = mesh().status?.rollout;
    assert.equal(done?.skippedWorkloads, 3);
    assert.equal(done?.pendingPods, 3);
    assert.match(
      done?.message ?? "",
      /all 4 workloads on 1\.1\.0; 3 workloads skipped \(Deployment mix\/broken: Failing, Deployment mix\/frozen: Paused, StatefulSet mix\/sticky: OnDeleteStrategy\); 3 pods pending until they end or are re-created \(Job mix\/batch, Job mix\/nightly-manual, Pod mix\/debug\)/,
    );
    assert.deepEqual(
      done?.held?.map((h) => `${h.workload} ${h.reason}`),
      [
        "Deployment/mix/broken Failing",
        "Deployment/mix/frozen Paused",
        "StatefulSet/mix/sticky OnDeleteStrategy",
        "Job/mix/batch RunsToCompletion",
        "Job/mix/nightly-manual RunsToCompletion",
      ],
    );
    assert.match(cluster.kubectl(["get", "meshes"]), /9\/16 \(3 pending, 4 skipped\)/);
    // Every transition announced once.
    for (const [reason, n] of [
      ["Installed", 1],
      ["RolloutStarted", 1],
      ["RolloutBlocked", 1],
      ["StepPassed", 3],
      ["RolloutComplete", 1],
    ] as const) {
      const list = events(reason);
      const seen = JSON.stringify(list);
      assert.equal(list.length, n, `${reason}: ${seen}`);
      assert.ok(
        list.every((e) => e.count === 1),
        `${reason} recorded once: ${seen}`,
      );
    }
    assert.match(events("RolloutComplete")[0]?.message ?? "", /3 pods pending until they end/);
  });

  it("onBlocked: Fail halts the rollout before it restarts anything, and says which budget", async () => {
    cluster.kubectl([
      "-n",
      NS,
      "patch",
      "pdb",
      "ledger",
      "--type=merge",
      "-p",
      '{"spec":{"maxUnavailable":0}}',
    ]);
    await waitFor(
      async () =>
        cluster.kubectl(["-n", NS, "get", "pdb", "ledger", "-o", "jsonpath={.status.disruptionsAllowed}"]) ===
        "0",
      30_000,
      "the budget to allow no disruption",
    );
    const before = revisions();
    patchMesh('{"proxy":{"version":"1.3.0"},"upgrade":{"onBlocked":"Fail"}}');
    await waitFor(async () => rollout().state === "Halted", 60_000, "halted").catch(failWith("halted"));
    assert.match(
      rollout().message ?? "",
      /before anything was restarted: 1 workload blocked by a PodDisruptionBudget \(StatefulSet mix\/ledger/,
    );
    const degraded = mesh().status?.conditions?.find((c) => c.type === "Degraded");
    assert.equal(degraded?.status, "True");
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(revisions(), before, "nothing restarted, nothing rolled back");
    // Back to the fleet's version: nothing was changed, so nothing is restarted.
    patchMesh('{"proxy":{"version":"1.1.0"},"upgrade":{"onBlocked":"Wait"}}');
    await waitFor(async () => rollout().state === "Complete", 60_000, "reverted").catch(failWith("reverted"));
    assert.deepEqual(revisions(), before);
  });

  it("fails the canary on an image that is not there within its grace, naming pod, container and reason", async () => {
    // No budget in the way: what fails the canary is its image alone.
    cluster.kubectl(["-n", NS, "delete", "pdb", "--all"]);
    const before = revisions();
    const patched = Date.now();
    patchMesh('{"proxy":{"version":"1.2.0-no-such-image"}}');
    await waitFor(async () => rollout().state === "RolledBack", 120_000, "rollback").catch(
      failWith("rollback"),
    );
    const seconds = (Date.now() - patched) / 1000;
    assert.ok(seconds < 120, `failed after ${seconds} s, not at the 10m step deadline`);
    const degraded = mesh().status?.conditions?.find((c) => c.type === "Degraded");
    assert.match(
      degraded?.message ?? "",
      /step 0 \(canary\): pod mix\/agent-[a-z0-9]+: container trellis-proxy ImagePullBackOff \(Back-off pulling image "localhost\/trellis\/proxy:1\.2\.0-no-such-image": not found\)/,
    );
    await waitFor(
      async () =>
        cluster
          .kubectl(["-n", NS, "rollout", "status", "daemonset/agent", "--timeout=1s"])
          .includes("successfully"),
      60_000,
      "the canary back on 1.1.0",
    ).catch(() => {});
    const after = revisions();
    const changed = Object.keys(after).filter((w) => after[w] !== before[w]);
    assert.deepEqual(changed, ["DaemonSet/agent"], "only the canary was touched (forward and back)");
  });
});
