// kubectl trellis stat without Prometheus: the proxies' own /metrics, read through the API
// server's pod proxy subresource, from real proxy processes in real pods on the local cluster's
// real node. A known traffic pattern (a fixed number of requests per pod, the application failing
// the first 10 of every 100) goes from this host to each pod's inbound proxy; the figures must be
// exactly that — counted since the proxies started, and as the difference of two scrapes around
// the traffic. A pod labelled as meshed whose admin port does not answer is named, not fatal.
// Needs root (the real node).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { V1Pod } from "@kubernetes/client-node";
import { build } from "esbuild";
import { connect, listAll, TYPES } from "../../cli/cluster.ts";
import { runCli } from "../../cli/main.ts";
import { statReport } from "../../cli/stat/stat-report.ts";
import { scrapeProxies } from "../../cli/stat/stat-sources.ts";
import { PORTS } from "../../controlplane/injector/inject.ts";
import { LocalCluster, REAL_NODE_LABEL, waitFor } from "../cluster/local-cluster.ts";
import { nodeRuntimeImageArchive } from "../cluster/node-images.ts";
import { installCrds } from "../operator-process.ts";

const IMAGE = "localhost/trellis-stat-test:1";
const PER_POD = 100;
const APP = `let n = 0;
require("node:http").createServer((q, s) => { s.statusCode = n++ % 100 < 10 ? 500 : 200; s.end("ok"); })
  .listen(8080, "127.0.0.1");`;

const placement = `
      nodeSelector: { ${REAL_NODE_LABEL}: "true" }
      tolerations: [{ key: ${REAL_NODE_LABEL}, operator: Exists, effect: NoSchedule }]`;

const WORKLOADS = `
apiVersion: v1
kind: Namespace
metadata: { name: shop, annotations: { trellis.dev/inject: enabled } }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web, trellis.dev/proxy-version: "0.1.0" } }
    spec:${placement}
      initContainers:
      - name: trellis-proxy
        image: ${IMAGE}
        imagePullPolicy: Never
        restartPolicy: Always
        args: ["/app/proxy.mjs"]
        env:
        - { name: TRELLIS_PROXY_INBOUND_LISTEN, value: "0.0.0.0:${PORTS.inbound}" }
        - { name: TRELLIS_PROXY_INBOUND_APP, value: "127.0.0.1:8080" }
        - { name: TRELLIS_PROXY_INBOUND_ALLOW_PLAINTEXT, value: "true" }
        - { name: TRELLIS_PROXY_ADMIN_LISTEN, value: "0.0.0.0:${PORTS.admin}" }
        readinessProbe: { httpGet: { path: /ready, port: ${PORTS.admin} }, periodSeconds: 1 }
      containers:
      - name: app
        image: ${IMAGE}
        imagePullPolicy: Never
        args: ["/app/app.js"]
---
apiVersion: v1
kind: Pod
metadata: { name: silent, namespace: shop, labels: { trellis.dev/proxy-version: "0.1.0" } }
spec:${placement.replaceAll("\n      ", "\n  ")}
  containers:
  - { name: app, image: ${IMAGE}, imagePullPolicy: Never, args: ["/app/app.js"] }
`;

describe("kubectl trellis stat from the proxies themselves, on the real node", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let web: V1Pod[] = [];

  async function sendTraffic(): Promise<void> {
    for (const pod of web)
      for (let i = 0; i < PER_POD; i++) {
        const res = await fetch(`http://${pod.status?.podIP}:${PORTS.inbound}/items`);
        await res.arrayBuffer();
      }
  }

  async function cli(...argv: string[]) {
    let out = "";
    let err = "";
    const env = { KUBECONFIG: cluster.kubeconfigPath, HOME: cluster.dir };
    const code = await runCli(
      argv,
      { out: (t) => (out += t), err: (t) => (err += t), isTTY: false, env },
      "kubectl trellis",
    );
    return { code, out, err };
  }

  before(async () => {
    const proxy = await build({
      entryPoints: [fileURLToPath(new URL("../../proxy/main.ts", import.meta.url))],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      write: false,
      banner: {
        js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
    const archive = nodeRuntimeImageArchive(IMAGE, {
      "/app/proxy.mjs": proxy.outputFiles[0]?.text ?? "",
      "/app/app.js": APP,
    });
    cluster = await LocalCluster.start({ nodes: 0, realNode: true });
    await cluster.realNode.importImage(archive);
    await installCrds(cluster);
    // The command reads the Mesh for its Prometheus URL: this one names none.
    cluster.kubectl(
      ["apply", "-f", "-"],
      "apiVersion: trellis.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec: { version: 0.1.0 }\n",
    );
    cluster.kubectl(["apply", "-f", "-"], WORKLOADS);
    await cluster.kubectlAsync(["-n", "shop", "rollout", "status", "deployment/web", "--timeout=120s"]);
    const pods = await listAll<V1Pod>(connect({ kubeconfig: cluster.kubeconfigPath }, {}).client, TYPES.pod, {
      namespace: "shop",
      labelSelector: "app=web",
    });
    web = pods.filter((p) => !p.metadata?.deletionTimestamp);
    assert.equal(web.length, 2);
    await waitFor(
      async () =>
        cluster.kubectl(["-n", "shop", "get", "pod", "silent", "-o", "jsonpath={.status.phase}"]) ===
        "Running",
      60_000,
      "the pod without a proxy to run",
    );
  });
  after(async () => {
    await cluster?.stop();
  });

  it("counts the requests sent between two scrapes through the API server, exactly", async () => {
    const c = connect({ kubeconfig: cluster.kubeconfigPath }, {});
    const result = await scrapeProxies(c, web, 1000, sendTraffic);
    assert.deepEqual(result.unreachable, []);
    const report = statReport(web, result.pods, {
      source: "proxies",
      window: "1s",
      windowSeconds: 1,
      unreachable: [],
    });
    const inbound = report.rows.find((r) => r.direction === "inbound");
    assert.equal(inbound?.workload, "deployment/web");
    assert.equal(inbound?.figures.requests, 2 * PER_POD);
    assert.equal(inbound?.figures.successRate, 0.9);
    assert.equal(inbound?.figures.mtlsShare, 0);
    assert.ok(
      (inbound?.figures.p50Ms ?? 0) > 0 && (inbound?.figures.p99Ms ?? 1e9) < 5000,
      JSON.stringify(inbound),
    );
  });

  it("prints the figures since the proxies started, and names the pod it cannot reach", async (t) => {
    await sendTraffic();
    const r = await cli("stat", "shop", "--window", "0");
    assert.equal(r.code, 0, r.err);
    t.diagnostic(`kubectl trellis stat shop --window 0\n${r.out}`);
    const lines = r.out.split("\n");
    assert.match(
      lines[0] ?? "",
      /^NAMESPACE\s+WORKLOAD\s+DIRECTION\s+MESHED\s+SUCCESS\s+RPS\s+REQUESTS\s+P50\s+P95\s+P99\s+MTLS$/,
    );
    assert.match(
      r.out,
      /\nshop\s+deployment\/web\s+inbound\s+2\/2\s+90\.00%\s+-\s+400\s+[\d.]+ms\s+[\d.]+ms\s+[\d.]+ms\s+0%\n/,
    );
    assert.match(r.out, /\nshop\s+deployment\/web\s+outbound\s+2\/2\s+-\s+-\s+0\s+-\s+-\s+-\s+-\n/);
    assert.match(
      r.out,
      /from 3 proxies' admin endpoints \(through the API server\), window since each proxy started\n/,
    );
    assert.match(r.out, /could not read 1 pod\(s\):\n {2}shop\/silent: .+\n$/);
    const json = JSON.parse((await cli("stat", "shop/web", "--window", "0", "-o", "json")).out);
    assert.equal(json.rows[0].figures.requests, 4 * PER_POD);
  });
});
