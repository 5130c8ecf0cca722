// The operator's controller core, seen from outside as a user would: objects the schema accepts
// but the operator cannot honour get InvalidSpec without a hot loop; health and metrics are
// served; two operator processes never both lead and the standby takes over when the leader is
// killed; an API server restart mid-watch loses no change.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import {
  installCrds,
  metricValue,
  type OperatorProcess,
  operatorHttp,
  startOperator,
} from "../operator-process.ts";

const profile = (name: string, regex: string) => `
apiVersion: trellis.dev/v1alpha1
kind: ServiceProfile
metadata: { name: ${name}, namespace: default }
spec:
  routes:
    - { name: items, condition: { method: GET, pathRegex: ${JSON.stringify(regex)} }, isRetryable: true, timeout: 300ms }
`;

describe("operator core on a real cluster", { timeout: 240_000 }, () => {
  let cluster: LocalCluster;
  const operators: OperatorProcess[] = [];

  const readyOf = (kind: string, name: string) =>
    cluster.kubectl([
      "get",
      kind,
      name,
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}',
    ]);

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0 });
    await installCrds(cluster);
    operators.push(await startOperator(cluster, ["--namespace=default"]));
  });
  after(async () => {
    for (const op of operators) await op.stop();
    await cluster?.stop();
  });

  it("serves health, readiness and metrics", async () => {
    await waitFor(
      async () => (await operatorHttp(operators[0]!, "/readyz")).status === 200,
      30_000,
      "/readyz 200",
    );
    assert.equal((await operatorHttp(operators[0]!, "/healthz")).status, 200);
    const metrics = (await operatorHttp(operators[0]!, "/metrics")).body;
    assert.match(metrics, /# TYPE trellis_controller_reconcile_total counter/);
    assert.match(metrics, /trellis_workqueue_depth\{.*name="mesh"/);
  });

  it("reports an unsafe route regex as InvalidSpec, once, without a hot loop", async () => {
    cluster.kubectl(["apply", "-f", "-"], profile("good.default.svc.cluster.local", "/items/[^/]+"));
    cluster.kubectl(["apply", "-f", "-"], profile("bad.default.svc.cluster.local", "/items/(a+)+"));
    await waitFor(
      async () => readyOf("serviceprofile", "good.default.svc.cluster.local") === "True/Accepted",
      30_000,
      "good accepted",
    );
    await waitFor(
      async () => readyOf("serviceprofile", "bad.default.svc.cluster.local") === "False/InvalidSpec",
      30_000,
      "bad refused",
    );
    const message = cluster.kubectl([
      "get",
      "serviceprofile",
      "bad.default.svc.cluster.local",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].message}',
    ]);
    assert.match(message, /spec\.routes\[0\]\.condition\.pathRegex: .*nested quantifier/);
    const count = async () =>
      metricValue(
        (await operatorHttp(operators[0]!, "/metrics")).body,
        "trellis_controller_reconcile_total",
        { controller: "serviceprofile" },
      );
    const before = await count();
    await sleep(3000);
    assert.ok((await count()) - before <= 1, "no reconcile loop on an object that cannot be honoured");
    const events = cluster.kubectl([
      "get",
      "events",
      "--field-selector",
      "involvedObject.name=bad.default.svc.cluster.local,reason=InvalidSpec",
      "-o",
      "name",
    ]);
    assert.equal(events.trim().split("\n").length, 1);
  });

  it("hands leadership to a second operator process when the leader is killed", async () => {
    const standby = await startOperator(cluster, ["--namespace=default"]);
    operators.push(standby);
    await sleep(2000);
    const holder = () =>
      cluster.kubectl([
        "-n",
        "default",
        "get",
        "lease",
        "trellis-operator",
        "-o",
        "jsonpath={.spec.holderIdentity}",
      ]);
    const leaderBefore = holder();
    const readiness = await operatorHttp(standby, "/readyz");
    assert.match(readiness.body, new RegExp(`standby; leader is ${leaderBefore}`));
    assert.equal(
      (await standby.logs()).some((l) => l.msg === "manager running"),
      false,
      "the standby does not reconcile",
    );
    const killedAt = Date.now();
    await operators[0]!.kill();
    await waitFor(
      async () => (await standby.logs()).some((l) => l.msg === "manager running"),
      30_000,
      "standby to lead",
    );
    const takeover = Date.now() - killedAt;
    assert.notEqual(holder(), leaderBefore);
    assert.ok(takeover < 20_000, `took over in ${takeover} ms (lease duration 15 s)`);
    cluster.kubectl(["apply", "-f", "-"], profile("after.default.svc.cluster.local", "/after"));
    await waitFor(
      async () => readyOf("serviceprofile", "after.default.svc.cluster.local") === "True/Accepted",
      30_000,
      "new leader reconciles",
    );
  });

  it("loses no change across an API server restart in the middle of a watch", async () => {
    await cluster.restartApiServer(2000);
    cluster.kubectl(["apply", "-f", "-"], profile("restart.default.svc.cluster.local", "/restart/(x+)+"));
    cluster.kubectl(["delete", "serviceprofile", "good.default.svc.cluster.local"]);
    await waitFor(
      async () => readyOf("serviceprofile", "restart.default.svc.cluster.local") === "False/InvalidSpec",
      60_000,
      "converged after restart",
    );
  });
});
