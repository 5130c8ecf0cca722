// Proxies report what they trust, for real, and their reports alone drive a trust-anchor
// rotation: real proxy processes on loopback hold tokens from the TokenRequest API bound to real
// (KWOK) pods, get their leaves from the real identity service process (running with its own
// ServiceAccount's RBAC), and report through it; the identity service writes the reports onto
// those pods; the real operator rotates the anchor while two proxies carry mTLS traffic
// (client → outbound proxy → inbound proxy → server). Nothing in this test writes a report
// annotation. test/integration/trust-anchor-rotation.test.ts covers each phase's wait and an
// operator restart with reports written by the test; this file covers the real report path.
import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import {
  connect,
  type IdentityProcess,
  metricValue,
  rawCall,
  SERVER_SPIFFE_ID,
  startIdentityProcess,
} from "../../controlplane/identity/testing/identity-fixture.ts";
import { fingerprint, pemBlocks } from "../../pki/index.ts";
import { FakeDestination } from "../../proxy/test/control-plane-fakes.ts";
import { type ProxyProcess, spawnProxy } from "../../proxy/test/proxy-process.ts";
import { type App, h1Request, startH1App } from "../../proxy/test/test-apps.ts";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";

const TD = "spiffe://cluster.local/ns/shop/sa";
const AUTHORITY = "server.shop.svc:80";

interface Anchor {
  rotationPhase?: string;
  generation?: number;
  fingerprint?: string;
  nextFingerprint?: string;
  proxiesDone?: number;
  proxiesTotal?: number;
  message?: string;
}

interface IdentityView {
  leafAnchorFingerprint?: string;
  trustBundleFingerprints: string[];
  lastReportedAt?: string;
}

/** A meshed pod on a KWOK node and the proxy that stands for it on loopback. */
interface Workload {
  name: "client" | "server";
  pod: string;
  tokenPath: string;
  bundlePath: string;
  proxy?: ProxyProcess;
}

describe("proxies report their trust through the identity service", { timeout: 600_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  let identity: IdentityProcess;
  let destination: FakeDestination;
  let app: App;
  let bundleSync: NodeJS.Timeout | undefined;
  const group = new ProcessGroup();
  const workloads: Workload[] = [];

  const anchor = (): Anchor =>
    JSON.parse(
      cluster.kubectl(["get", "mesh", "default", "-o", "jsonpath={.status.trustAnchor}"]) || "{}",
    ) as Anchor;
  const annotations = (pod: string): Record<string, string> =>
    JSON.parse(
      cluster.kubectl(["-n", "shop", "get", "pod", pod, "-o", "jsonpath={.metadata.annotations}"]) || "{}",
    ) as Record<string, string>;
  const identityOf = async (w: Workload) =>
    JSON.parse((await w.proxy!.admin("/identity")).body) as IdentityView;
  const token = (sa: string, pod?: string) => {
    const args = ["-n", "shop", "create", "token", sa, "--audience=identity.trellis.dev", "--duration=2h"];
    if (pod) {
      const uid = cluster.kubectl(["-n", "shop", "get", "pod", pod, "-o", "jsonpath={.metadata.uid}"]);
      args.push("--bound-object-kind=Pod", `--bound-object-name=${pod}`, `--bound-object-uid=${uid}`);
    }
    return cluster.kubectl(args).trim();
  };

  /**
   * Stands in for the kubelet: in a real pod the trellis-trust-bundle ConfigMap is projected into
   * a file; here its content is copied into each proxy's bundle file (atomically, as the
   * kubelet's symlink swap is) whenever it changes.
   */
  const syncBundles = async () => {
    const pem = await cluster
      .kubectlAsync([
        "-n",
        "shop",
        "get",
        "configmap",
        "trellis-trust-bundle",
        "-o",
        "jsonpath={.data.ca-bundle\\.crt}",
      ])
      .catch(() => "");
    if (!pem.includes("BEGIN CERTIFICATE")) return;
    for (const w of workloads) {
      writeFileSync(`${w.bundlePath}.tmp`, pem);
      renameSync(`${w.bundlePath}.tmp`, w.bundlePath);
    }
  };

  /** The identity service runs with its own ServiceAccount's token, so its RBAC is what is tested. */
  const identityKubeconfig = () => {
    const config = parse(cluster.kubectl(["config", "view", "--raw"])) as {
      users: Array<{ name: string; user: Record<string, unknown> }>;
    };
    const saToken = cluster
      .kubectl(["-n", "trellis-system", "create", "token", "trellis-identity", "--duration=2h"])
      .trim();
    for (const u of config.users) u.user = { token: saToken };
    const path = join(cluster.dir, "identity-sa.kubeconfig");
    writeFileSync(path, stringify(config));
    return path;
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 1 });
    await installCrds(cluster);
    operator = await startOperator(cluster, ["--no-leader-elect"]);
    // leafLifetime 1h: the rotation's fallback ("the longest leaf lifetime has passed") cannot
    // fire within this test, so every step past a wait is a proxy's report.
    cluster.kubectl(
      ["apply", "-f", "-"],
      "apiVersion: trellis.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec:\n  version: 1.0.0\n  identity: { leafLifetime: 1h }\n",
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=120s", "mesh/default"]);
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["annotate", "namespace", "shop", "trellis.dev/inject=enabled"]);
    for (const name of ["client", "server"] as const) {
      cluster.kubectl(["-n", "shop", "create", "serviceaccount", name]);
      cluster.kubectl([
        "-n",
        "shop",
        "run",
        `${name}-0`,
        "--image=localhost/app:1",
        `--labels=app=${name},trellis.dev/proxy-version=1.0.0`,
        `--overrides={"spec":{"serviceAccountName":"${name}"}}`,
      ]);
      workloads.push({
        name,
        pod: `${name}-0`,
        tokenPath: join(cluster.dir, `${name}.token`),
        bundlePath: join(cluster.dir, `${name}-bundle.pem`),
      });
    }
    await waitFor(
      async () =>
        cluster.kubectl(["-n", "shop", "get", "pods", "-o", "jsonpath={.items[*].status.phase}"]) ===
        "Running Running",
      60_000,
      "the pods to run",
    );
    // 20 s leaves: proxies renew every ~14 s, so the issuer switch reaches them quickly.
    identity = await startIdentityProcess(
      cluster,
      group,
      ["--issuer-poll=1s", "--leaf-lifetime=20s"],
      [],
      identityKubeconfig(),
    );
    await waitFor(
      async () => {
        await syncBundles();
        return workloads.every((w) => {
          try {
            return pemBlocks(readFileSync(w.bundlePath, "utf8"), "CERTIFICATE").length > 0;
          } catch {
            return false;
          }
        });
      },
      30_000,
      "the trust bundle in shop",
    );
    bundleSync = setInterval(() => void syncBundles(), 300);
    for (const w of workloads) writeFileSync(w.tokenPath, token(w.name, w.pod));
    app = await startH1App((_req, res) => res.end("ok"));
    destination = await new FakeDestination().start();
    const identityConfig = (w: Workload) => ({
      url: identity.url,
      tokenPath: w.tokenPath,
      trustBundlePath: w.bundlePath,
      spiffeId: `${TD}/${w.name}`,
      serverIdentity: SERVER_SPIFFE_ID,
      trustBundlePollMs: 200,
    });
    const [client, server] = workloads as [Workload, Workload];
    server.proxy = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${app.port}` },
      identity: identityConfig(server),
      admin: { listen: "127.0.0.1:0" },
    });
    // Discovery is not under test: an in-test destination service points the client at the
    // server proxy's loopback port and names the identity it must present.
    destination.set(AUTHORITY, {
      endpoints: [{ address: "127.0.0.1", port: server.proxy.ports.inbound!, identity: `${TD}/server` }],
    });
    client.proxy = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      identity: identityConfig(client),
      destination: { url: destination.url },
      admin: { listen: "127.0.0.1:0" },
    });
  });

  after(async () => {
    clearInterval(bundleSync);
    await Promise.all(workloads.map((w) => w.proxy?.stop("SIGKILL")));
    await Promise.all([app?.close(), destination?.close()]);
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("writes each proxy's report onto the pod its token is bound to", async () => {
    const fp = anchor().fingerprint;
    assert.ok(fp);
    await waitFor(
      async () =>
        workloads.every((w) => {
          const a = annotations(w.pod);
          return (
            a["trellis.dev/trust-bundle-fingerprints"] === fp &&
            a["trellis.dev/leaf-anchor-fingerprint"] === fp
          );
        }),
      30_000,
      "both pods to carry their proxy's report",
    );
    for (const w of workloads) {
      const view = await identityOf(w);
      assert.equal(view.leafAnchorFingerprint, fp);
      assert.deepEqual(view.trustBundleFingerprints, [fp]);
      assert.ok(view.lastReportedAt, `${w.name} has reported`);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${identity.adminPort}/metrics`)).text();
    assert.ok(metricValue(metrics, "trellis_identity_reports_total", { result: "Patched" }) >= 2);

    // Refusals: a token bound to no pod, a report that is not a real state, a re-created pod.
    const bundlePem = readFileSync(workloads[0]!.bundlePath, "utf8");
    assert.equal(fingerprint(pemBlocks(bundlePem, "CERTIFICATE")[0] as Buffer), fp);
    const session = connect(identity.url, bundlePem);
    try {
      const send = (tok: string, body: object) =>
        rawCall(session, {
          token: tok,
          path: "/v1/report",
          contentType: "application/json",
          body: JSON.stringify(body),
        });
      const unbound = await send(token("client"), { trustBundleFingerprints: [fp] });
      assert.equal(unbound.status, 403, unbound.text);
      assert.equal(unbound.json.error, "NotBoundToPod");
      const stranger = "0".repeat(64);
      const invalid = await send(token("client", "client-0"), {
        trustBundleFingerprints: [fp],
        leafAnchorFingerprint: stranger,
      });
      assert.equal(invalid.status, 400, invalid.text);
      assert.equal(invalid.json.error, "InvalidReport");

      // A pod re-created under the same name is not the pod a (still cached) token is bound to.
      const run = () =>
        cluster.kubectl([
          "-n",
          "shop",
          "run",
          "probe-0",
          "--image=localhost/app:1",
          `--overrides={"spec":{"serviceAccountName":"client"}}`,
        ]);
      run();
      const probeToken = token("client", "probe-0");
      const first = await send(probeToken, { trustBundleFingerprints: [fp] });
      assert.equal(first.status, 200, first.text);
      assert.deepEqual(first.json, { pod: "shop/probe-0", result: "Patched" });
      assert.equal(annotations("probe-0")["trellis.dev/trust-bundle-fingerprints"], fp);
      cluster.kubectl([
        "-n",
        "shop",
        "delete",
        "pod",
        "probe-0",
        "--grace-period=0",
        "--force",
        "--wait=true",
      ]);
      run();
      const replaced = await send(probeToken, { trustBundleFingerprints: [fp, stranger] });
      assert.equal(replaced.status, 409, replaced.text);
      assert.equal(replaced.json.error, "PodReplaced");
      assert.equal(annotations("probe-0")["trellis.dev/trust-bundle-fingerprints"], undefined);
      cluster.kubectl([
        "-n",
        "shop",
        "delete",
        "pod",
        "probe-0",
        "--grace-period=0",
        "--force",
        "--wait=true",
      ]);
    } finally {
      session.close();
    }
    assert.equal(
      annotations("client-0")["trellis.dev/leaf-anchor-fingerprint"],
      fp,
      "a refused report writes nothing",
    );
    const after = await (await fetch(`http://127.0.0.1:${identity.adminPort}/metrics`)).text();
    assert.equal(metricValue(after, "trellis_identity_reports_total", { result: "NotBoundToPod" }), 1);
    assert.equal(metricValue(after, "trellis_identity_reports_total", { result: "InvalidReport" }), 1);
  });

  it("rotates the trust anchor on the proxies' reports alone, with mTLS traffic and no failed request", async (t) => {
    const [client, server] = workloads as [Workload, Workload];
    const old = anchor().fingerprint as string;
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const loop = async () => {
      while (!stop) {
        const res = await h1Request(client.proxy!.ports.outbound!, {
          host: AUTHORITY,
          path: "/",
          agent,
        }).catch((e: Error) => ({ status: 0, body: e.message }));
        if (res.status === 200) ok++;
        else failures.push(`${res.status} ${res.body.slice(0, 200)}`);
      }
    };
    const phases: string[] = [];
    const loops = Promise.all([loop(), loop(), loop()]);
    try {
      await waitFor(async () => ok > 50, 30_000, "traffic to flow");
      cluster.kubectl(["annotate", "mesh", "default", "trellis.dev/rotate-trust-anchor=now"]);
      const started = Date.now();
      await waitFor(
        async () => {
          const a = anchor();
          if (phases.at(-1) !== a.rotationPhase) phases.push(String(a.rotationPhase));
          return a.rotationPhase === "Stable" && a.generation === 2;
        },
        240_000,
        "the rotation to complete",
      ).catch((err: Error) => {
        throw new Error(`${err.message}; phases ${phases.join(" → ")}; status ${JSON.stringify(anchor())}`);
      });
      t.diagnostic(`rotation took ${((Date.now() - started) / 1000).toFixed(1)} s: ${phases.join(" → ")}`);
      // Keep traffic on the final bundle for a while: new connections use only the new anchor.
      const okBefore = ok;
      await waitFor(async () => ok > okBefore + 100, 30_000, "traffic after the rotation");
    } finally {
      stop = true;
      await loops;
      agent.destroy();
    }
    t.diagnostic(`${ok} requests succeeded, ${failures.length} failed`);
    const next = anchor().fingerprint as string;
    assert.notEqual(next, old);
    assert.deepEqual(
      failures.slice(0, 5),
      [],
      `${failures.length} failed requests of ${ok + failures.length}`,
    );
    assert.ok(ok > 200, `only ${ok} requests completed`);
    assert.ok(phases.includes("IssuerSwitched"), `phases seen: ${phases.join(" → ")}`);
    for (const w of [client, server]) {
      await waitFor(
        async () => {
          const view = await identityOf(w);
          return view.leafAnchorFingerprint === next && view.trustBundleFingerprints.join() === next;
        },
        30_000,
        `${w.name}'s proxy on the new anchor only`,
      );
      const a = annotations(w.pod);
      assert.equal(a["trellis.dev/leaf-anchor-fingerprint"], next);
      assert.equal(a["trellis.dev/trust-bundle-fingerprints"], next);
    }
    assert.throws(
      () => cluster.kubectl(["-n", "trellis-system", "get", "certificate", "trellis-trust-anchor-1"]),
      /NotFound/,
    );
    // The pods' annotations were written by the identity service, field manager trellis-identity.
    const managers = cluster.kubectl([
      "-n",
      "shop",
      "get",
      "pod",
      "client-0",
      "--show-managed-fields",
      "-o",
      "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    assert.match(managers, /trellis-identity/);
  });
});
