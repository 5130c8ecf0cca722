// The operator keeps the data plane whole, on KWOK through the real API server and injector:
// pods admitted without a proxy while the injector was down (the webhook fails open) are
// reported (status.proxies.missing, DataPlaneIncomplete, an Event), nothing restarts while the
// injector is still down, then their Deployments and StatefulSet are restarted once each in
// canaried steps — also when the operator is SIGKILLed mid-repair — and the bare pod is reported,
// never killed. A namespace annotated after its pods started is meshed without a manual restart;
// with spec.injection.repair: Report nothing restarts; a forced control-plane upgrade that
// leaves proxies outside the skew policy is reported and repaired by the rollout path.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort, LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { meshEvents, templateRevisions } from "../mesh-observe.ts";
import {
  installCrds,
  metricValue,
  type OperatorProcess,
  operatorHttp,
  startInjector,
  startOperator,
} from "../operator-process.ts";

interface MeshView {
  status?: {
    proxies?: {
      summary?: string;
      missing?: number;
      outOfSkew?: number;
      incomplete?: Array<{ workload: string; missing: number; outOfSkew: number }>;
    };
    repair?: { state?: string; step?: number; message?: string; startedAt?: string };
    rollout?: { state?: string; toVersion?: string };
    controlPlane?: { version?: string };
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

const app = (kind: "Deployment" | "StatefulSet", name: string, ns: string) => `
apiVersion: apps/v1
kind: ${kind}
metadata: { name: ${name}, namespace: ${ns} }
spec:
  replicas: 2
  ${kind === "StatefulSet" ? `serviceName: ${name}` : ""}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: app, image: "localhost/app:1", ports: [{ containerPort: 8080 }] }] }
---`;

describe("the data plane kept whole", { timeout: 600_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  let injectorArg: string;
  let injectorPort: number;
  const group = new ProcessGroup();

  const mesh = () => JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as MeshView;
  const condition = (type: string) => mesh().status?.conditions?.find((c) => c.type === type);
  const patchMesh = (spec: string) =>
    cluster.kubectl(["patch", "mesh", "default", "--type=merge", "-p", `{"spec":${spec}}`]);
  const failWith = (what: string) => (err: Error) => {
    throw new Error(`${err.message} (${what}): ${JSON.stringify(mesh().status)}`);
  };
  const proxiesOf = (ns: string) =>
    cluster
      .kubectl([
        "-n",
        ns,
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.trellis\\.dev/proxy-version}{'\\n'}{end}",
      ])
      .trim()
      .split("\n")
      .filter(Boolean);
  const uid = (ns: string, pod: string) =>
    cluster.kubectl(["-n", ns, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]);
  const meshed = async (ns: string) => {
    const pods = proxiesOf(ns);
    return pods.length > 0 && pods.every((p) => !p.endsWith("="));
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 3 });
    await installCrds(cluster);
    injectorPort = await freePort();
    injectorArg = `--injector-url=https://127.0.0.1:${injectorPort}/inject`;
    operator = await startOperator(cluster, ["--no-leader-elect", injectorArg]);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: 1.0.0
  upgrade: { canary: { percent: 34 }, waves: [100], maxConcurrentRestarts: 5, analysis: { interval: 3s } }
`,
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
  });
  after(async () => {
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("reports pods admitted without a proxy, waits for the injector, then restarts each workload once, in canaried steps, across an operator crash", async () => {
    // The injector is not running: the webhook fails open and the pods come up without a proxy.
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, annotations: { trellis.dev/inject: enabled } }\n`,
    );
    cluster.kubectl(
      ["apply", "-f", "-"],
      [
        app("Deployment", "web", "shop"),
        app("Deployment", "api", "shop"),
        app("StatefulSet", "db", "shop"),
        "apiVersion: v1\nkind: Pod\nmetadata: { name: debug, namespace: shop }\nspec: { containers: [{ name: sh, image: localhost/debug:1 }] }\n",
      ].join("\n"),
    );
    await waitFor(async () => mesh().status?.proxies?.missing === 7, 90_000, "7 pods missing a proxy").catch(
      failWith("missing"),
    );
    const incomplete = condition("DataPlaneIncomplete");
    assert.equal(incomplete?.status, "True");
    assert.equal(incomplete?.reason, "ProxiesMissing");
    assert.match(
      incomplete?.message ?? "",
      /^7 pods without a proxy: Deployment shop\/api \(2\), Deployment shop\/web \(2\), Pod shop\/debug \(1\), and 1 more; /,
    );
    assert.match(mesh().status?.proxies?.summary ?? "", /^0\/0 \(7 missing\)$/);
    assert.ok(meshEvents(cluster, "DataPlaneIncomplete").length >= 1, "a Warning Event");
    const metrics = (await operatorHttp(operator, "/metrics")).body;
    assert.equal(metricValue(metrics, "trellis_mesh_pods_without_proxy", { mesh: "default" }), 7);
    const before = templateRevisions(cluster, "shop");
    const debugUid = uid("shop", "debug");
    // Restarting now would bring the pods back without a proxy: nothing restarts.
    await new Promise((r) => setTimeout(r, 8000));
    assert.deepEqual(
      templateRevisions(cluster, "shop"),
      before,
      "nothing restarted while the injector is down",
    );
    assert.equal(mesh().status?.repair, undefined);

    await startInjector(cluster, group, injectorPort);
    await waitFor(
      async () => (mesh().status?.repair?.step ?? 0) >= 1,
      120_000,
      "the repair's first wave",
    ).catch(failWith("repair wave"));
    await operator.kill();
    operator = await startOperator(cluster, ["--no-leader-elect", injectorArg]);
    await waitFor(async () => mesh().status?.repair?.state === "Complete", 120_000, "repair complete").catch(
      failWith("repair complete"),
    );
    await waitFor(async () => mesh().status?.proxies?.missing === 1, 60_000, "only the bare pod left").catch(
      failWith("bare pod"),
    );
    const after = templateRevisions(cluster, "shop");
    for (const w of ["Deployment/web", "Deployment/api", "StatefulSet/db"])
      assert.equal(after[w], (before[w] ?? 0) + 1, `${w} restarted exactly once`);
    assert.deepEqual(
      proxiesOf("shop").filter((p) => p.endsWith("=")),
      ["debug="],
      "every pod but the bare one has a proxy",
    );
    assert.equal(uid("shop", "debug"), debugUid, "the bare pod is never killed");
    assert.match(
      mesh().status?.repair?.message ?? "",
      /restarted 3 workloads; 1 pod pending until they end or are re-created \(Pod shop\/debug\)/,
    );
    assert.match(
      condition("DataPlaneIncomplete")?.message ?? "",
      /^1 pod without a proxy: Pod shop\/debug \(1\)/,
    );
    const steps = meshEvents(cluster, "RepairStepPassed");
    assert.deepEqual(
      steps.map((e) => e.message.replace(/ \(.*/, "")),
      ["Data-plane repair: canary passed analysis", "Data-plane repair: wave 1 passed analysis"],
    );
    assert.deepEqual(
      meshEvents(cluster, "RepairStarted").map((e) => e.count),
      [1],
    );
  });

  it("meshes a namespace annotated after its pods started, without a manual restart", async () => {
    cluster.kubectl(["create", "namespace", "legacy"]);
    cluster.kubectl(["apply", "-f", "-"], app("Deployment", "old", "legacy"));
    await cluster.kubectlAsync(["-n", "legacy", "rollout", "status", "deployment/old", "--timeout=60s"]);
    assert.equal(await meshed("legacy"), false);
    cluster.kubectl(["annotate", "namespace", "legacy", "trellis.dev/inject=enabled"]);
    await waitFor(() => meshed("legacy"), 120_000, "legacy meshed").catch(failWith("legacy"));
    assert.equal(templateRevisions(cluster, "legacy")["Deployment/old"], 2, "restarted once");
  });

  it("with spec.injection.repair: Report, reports and restarts nothing", async () => {
    patchMesh('{"injection":{"repair":"Report"}}');
    cluster.kubectl(["create", "namespace", "later"]);
    cluster.kubectl(["apply", "-f", "-"], app("Deployment", "quiet", "later"));
    await cluster.kubectlAsync(["-n", "later", "rollout", "status", "deployment/quiet", "--timeout=60s"]);
    cluster.kubectl(["annotate", "namespace", "later", "trellis.dev/inject=enabled"]);
    await waitFor(async () => mesh().status?.proxies?.missing === 3, 60_000, "reported").catch(
      failWith("report"),
    );
    assert.match(condition("DataPlaneIncomplete")?.message ?? "", /spec\.injection\.repair is Report/);
    await new Promise((r) => setTimeout(r, 8000));
    assert.equal(templateRevisions(cluster, "later")["Deployment/quiet"], 1, "not restarted");
    assert.equal(await meshed("later"), false);
  });

  it("reports proxies a forced control-plane upgrade leaves outside the skew policy, and repairs them through a rollout", async () => {
    patchMesh('{"version":"1.2.0","proxy":{"version":"1.0.0"},"upgrade":{"force":true}}');
    await waitFor(
      async () => mesh().status?.controlPlane?.version === "1.2.0",
      120_000,
      "control plane 1.2.0",
    ).catch(failWith("upgrade"));
    // web 2, api 2, db 2, old 2 run proxy 1.0.0, two minor releases behind.
    await waitFor(async () => mesh().status?.proxies?.outOfSkew === 8, 60_000, "8 out of skew").catch(
      failWith("skew"),
    );
    assert.match(condition("DataPlaneIncomplete")?.message ?? "", /8 proxies outside the skew policy/);
    const metrics = (await operatorHttp(operator, "/metrics")).body;
    assert.equal(metricValue(metrics, "trellis_mesh_proxies_out_of_skew", { mesh: "default" }), 8);
    assert.equal(
      mesh().status?.rollout?.state ?? "none",
      "none",
      "the fleet's own version is pinned: no rollout",
    );
    patchMesh('{"proxy":{"version":null},"injection":{"repair":"Restart"}}');
    await waitFor(
      async () => mesh().status?.rollout?.state === "Complete" && !mesh().status?.proxies?.outOfSkew,
      180_000,
      "in skew again",
    ).catch(failWith("in skew"));
    assert.ok(proxiesOf("shop").every((p) => p.endsWith("=1.2.0") || p === "debug="));
  });
});
