// The destination service against a real cluster: a real API server, controller-manager
// filling EndpointSlices and KWOK running the pods. The service runs as its own process
// (`trellis-controlplane destination --plaintext`) and is watched over HTTP/2 as a proxy would.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import http2 from "node:http2";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { freePort, LocalCluster, waitFor } from "../../test/cluster/local-cluster.ts";

const repo = join(import.meta.dirname, "../..");

interface Update {
  endpoints: { address: string; port: number; identity?: string; targetPort?: number }[];
  routes: {
    name: string;
    condition: { method?: string; pathRegex: string };
    isRetryable: boolean;
    timeout?: number;
  }[];
  retryBudget?: { retryRatio: number; minRetriesPerSecond: number; ttl: number };
}

const manifests = (replicas: number) => `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: web, namespace: shop }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 8080, targetPort: 80 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web, trellis.dev/proxy-version: 1.0.0 } }
    spec:
      serviceAccountName: web
      containers: [{ name: app, image: "localhost/web:1", ports: [{ containerPort: 80 }] }]
`;

const profile = (retryRatio: number) => `
apiVersion: trellis.dev/v1alpha1
kind: ServiceProfile
metadata: { name: web.shop.svc.cluster.local, namespace: shop }
spec:
  routes:
    - name: GET /items
      condition: { method: GET, pathRegex: "/items(/.*)?" }
      isRetryable: true
      timeout: 300ms
  retryBudget: { retryRatio: ${retryRatio}, minRetriesPerSecond: 10, ttl: 10s }
`;

/** One watch stream: its status and every update line received so far. */
class WatchStream {
  status = 0;
  readonly updates: Update[] = [];
  ended = false;
  private readonly stream: http2.ClientHttp2Stream;

  constructor(session: http2.ClientHttp2Session, authority: string) {
    this.stream = session.request({ ":path": `/v1/watch?authority=${encodeURIComponent(authority)}` });
    this.stream.setEncoding("utf8");
    let pending = "";
    this.stream.on("response", (h) => {
      this.status = Number(h[":status"]);
    });
    this.stream.on("data", (chunk: string) => {
      const lines = (pending + chunk).split("\n");
      pending = lines.pop() ?? "";
      if (this.status === 200)
        for (const l of lines) if (l.trim()) this.updates.push(JSON.parse(l) as Update);
    });
    this.stream.on("end", () => {
      this.ended = true;
    });
    this.stream.on("error", () => {});
  }

  get last(): Update | undefined {
    return this.updates.at(-1);
  }

  close(): void {
    this.stream.close();
  }
}

describe("destination service", { timeout: 180_000 }, () => {
  let cluster: LocalCluster;
  let child: ChildProcess;
  let session: http2.ClientHttp2Session;
  let port: number;

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 2 });
    cluster.kubectl(["apply", "--server-side", "-f", join(repo, "crds")]);
    cluster.kubectl(["apply", "-f", "-"], manifests(2));
    port = await freePort();
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(repo, "controlplane/main.ts"),
        "destination",
        `--kubeconfig=${cluster.kubeconfigPath}`,
        `--port=${port}`,
        "--host=127.0.0.1",
        "--plaintext",
        "--admin-port=0",
        "--log-level=warn",
      ],
      { cwd: repo, stdio: ["ignore", "inherit", "inherit"] },
    );
    await waitFor(
      async () => {
        const probe = http2.connect(`http://127.0.0.1:${port}`);
        const ok = await new Promise<boolean>((resolve) => {
          probe.once("connect", () => resolve(true));
          probe.once("error", () => resolve(false));
        });
        probe.destroy();
        return ok;
      },
      30_000,
      "destination listening",
    );
    session = http2.connect(`http://127.0.0.1:${port}`);
  });
  after(async () => {
    session?.destroy();
    child?.kill("SIGTERM");
    await cluster?.stop();
  });

  it("streams a meshed Deployment's ready pods on port 4143 with their SPIFFE identities", async () => {
    const watch = new WatchStream(session, "web.shop.svc.cluster.local:8080");
    await waitFor(async () => watch.last?.endpoints.length === 2, 60_000, "2 endpoints");
    assert.equal(watch.status, 200);
    for (const e of watch.last?.endpoints ?? []) {
      assert.equal(e.port, 4143);
      assert.equal(e.identity, "spiffe://cluster.local/ns/shop/sa/web");
      assert.match(e.address, /^\d+\.\d+\.\d+\.\d+$/);
    }
    assert.deepEqual(watch.last?.routes, []);

    cluster.kubectl(["scale", "deployment/web", "-n", "shop", "--replicas=3"]);
    await waitFor(async () => watch.last?.endpoints.length === 3, 60_000, "3 endpoints on the open stream");
    cluster.kubectl(["scale", "deployment/web", "-n", "shop", "--replicas=1"]);
    await waitFor(async () => watch.last?.endpoints.length === 1, 60_000, "1 endpoint on the open stream");
    assert.equal(watch.ended, false);
    watch.close();
  });

  it("accepts the short forms of a Service name", async () => {
    for (const authority of ["web.shop.svc:8080", "web.shop:8080"]) {
      const watch = new WatchStream(session, authority);
      await waitFor(async () => watch.updates.length > 0, 10_000, `first update for ${authority}`);
      assert.equal(watch.status, 200);
      assert.equal(watch.last?.endpoints[0]?.port, 4143);
      watch.close();
    }
  });

  it("adds a ServiceProfile's routes and retry budget, and follows its changes", async () => {
    const watch = new WatchStream(session, "web.shop.svc.cluster.local:8080");
    await waitFor(async () => watch.updates.length > 0, 10_000, "first update");
    cluster.kubectl(["apply", "-f", "-"], profile(0.2));
    await waitFor(async () => (watch.last?.routes.length ?? 0) === 1, 30_000, "routes");
    assert.deepEqual(watch.last?.routes, [
      {
        name: "GET /items",
        condition: { method: "GET", pathRegex: "/items(/.*)?" },
        isRetryable: true,
        timeout: 300,
      },
    ]);
    assert.deepEqual(watch.last?.retryBudget, { retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 10_000 });
    cluster.kubectl(["apply", "-f", "-"], profile(0.5));
    await waitFor(async () => watch.last?.retryBudget?.retryRatio === 0.5, 30_000, "updated budget");
    cluster.kubectl(["delete", "serviceprofile", "-n", "shop", "web.shop.svc.cluster.local"]);
    await waitFor(async () => watch.last?.routes.length === 0, 30_000, "routes removed");
    assert.equal(watch.last?.retryBudget, undefined);
    watch.close();
  });

  it("answers 404 for an authority that is not a Service, or not one of its ports", async () => {
    for (const authority of ["nothing.shop.svc.cluster.local:8080", "web.shop:9999", "example.com:443"]) {
      const watch = new WatchStream(session, authority);
      await waitFor(async () => watch.status !== 0, 10_000, `status for ${authority}`);
      assert.equal(watch.status, 404, authority);
    }
  });

  it("answers a ClusterIP:port as its Service and a pod IP:port as that pod (capture's lookups)", async () => {
    const clusterIp = cluster.kubectl([
      "get",
      "service",
      "-n",
      "shop",
      "web",
      "-o",
      "jsonpath={.spec.clusterIP}",
    ]);
    const byName = new WatchStream(session, "web.shop:8080");
    const byIp = new WatchStream(session, `${clusterIp.trim()}:8080`);
    await waitFor(async () => byName.updates.length > 0 && byIp.updates.length > 0, 10_000, "both answered");
    assert.deepEqual(byIp.last, byName.last);
    assert.equal(byIp.last?.endpoints[0]?.targetPort, 80);
    const podIp = byName.last?.endpoints[0]?.address ?? "";
    const pod = new WatchStream(session, `${podIp}:9090`);
    await waitFor(async () => pod.updates.length > 0, 10_000, "pod answered");
    assert.deepEqual(pod.last?.endpoints, [
      { address: podIp, port: 4143, identity: "spiffe://cluster.local/ns/shop/sa/web", targetPort: 9090 },
    ]);
    const unknown = new WatchStream(session, "198.18.255.254:80");
    await waitFor(async () => unknown.status !== 0, 10_000, "status for an unknown address");
    assert.equal(unknown.status, 404);
    for (const w of [byName, byIp, pod]) w.close();
  });

  it("ends the stream when the Service is deleted, so the proxy reconnects and learns 404", async () => {
    const watch = new WatchStream(session, "web.shop:8080");
    await waitFor(async () => watch.updates.length > 0, 10_000, "first update");
    cluster.kubectl(["delete", "service", "-n", "shop", "web"]);
    await waitFor(async () => watch.ended, 30_000, "stream ended");
  });
});
