// Rollout analysis through a real Prometheus (Debian's package, started here) scraping real
// Trellis proxy processes on loopback: the proxies of the new version front an application that
// fails some requests, Prometheus sees the success rate drop, and the canary is rolled back with
// the figure in the Mesh's Degraded condition. The workloads being rolled are KWOK Deployments;
// the proxies' series carry proxy_version as the relabelling in docs/upgrades.md would set it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { freePort, LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { installCrds, type OperatorProcess, startInjector, startOperator } from "../operator-process.ts";
import { prometheusValue, startPrometheus, startProxiedApp } from "../proxy-process.ts";

describe("rollout analysis with a real Prometheus", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  const group = new ProcessGroup();
  let traffic: NodeJS.Timeout | undefined;
  let promPort = 0;

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 2 });
    const good = await startProxiedApp(group, cluster.dir, "1.0.0", 0);
    const bad = await startProxiedApp(group, cluster.dir, "1.1.0", 0.3);
    promPort = await startPrometheus(group, cluster.dir, [
      { admin: good.admin, labels: { proxy_version: "1.0.0" } },
      { admin: bad.admin, labels: { proxy_version: "1.1.0" } },
    ]);
    // A steady request stream through both proxies (loopback only, bounded by the test's life).
    traffic = setInterval(() => {
      for (const port of [good.inbound, bad.inbound])
        void fetch(`http://127.0.0.1:${port}/items`)
          .then((r) => r.arrayBuffer())
          .catch(() => {});
    }, 20);
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
  upgrade:
    canary: { percent: 20 }
    waves: [100]
    analysis: { interval: 10s, minSuccessRate: 0.99, prometheusUrl: "http://127.0.0.1:${promPort}" }
`,
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
    await startInjector(cluster, group, port);
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["annotate", "namespace", "shop", "trellis.dev/inject=enabled"]);
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 5; i++)
      cluster.kubectl([
        "-n",
        "shop",
        "create",
        "deployment",
        `app-${i}`,
        "--image=localhost/app:1",
        "--port=8080",
      ]);
    await waitFor(
      async () =>
        cluster.kubectl(["get", "mesh", "default", "-o", "jsonpath={.status.proxies.summary}"]) === "5/5",
      60_000,
      "5 meshed pods",
    );
    // Prometheus has series for both versions before the rollout starts.
    await waitFor(
      async () => (await prometheusValue(promPort, "count(request_total)")) >= 3,
      60_000,
      "Prometheus to scrape both proxies",
      1000,
    );
    await new Promise((r) => setTimeout(r, 5000));
  });
  after(async () => {
    if (traffic) clearInterval(traffic);
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("rolls the canary back when Prometheus shows the new version failing requests", async () => {
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      '{"spec":{"proxy":{"version":"1.1.0"}}}',
    ]);
    await waitFor(
      async () =>
        cluster.kubectl(["get", "mesh", "default", "-o", "jsonpath={.status.rollout.state}"]) ===
        "RolledBack",
      120_000,
      "rollback",
    );
    const message = cluster.kubectl([
      "get",
      "mesh",
      "default",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Degraded")].message}',
    ]);
    const rate = Number(/success rate (0\.\d+) < 0\.99/.exec(message)?.[1]);
    assert.ok(
      rate > 0.5 && rate < 0.9,
      `the success rate Prometheus measured for 1.1.0 (~0.7) is in the message: ${message}`,
    );
    const restarted = cluster.kubectl([
      "get",
      "events",
      "--field-selector",
      "involvedObject.kind=Mesh,reason=RolledBack",
      "-o",
      "jsonpath={.items[*].message}",
    ]);
    assert.match(
      restarted,
      /rolled back to 1\.0\.0 on 1 workload\b/,
      "only the canary (20% of 5) was touched",
    );
  });
});
