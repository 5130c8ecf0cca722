// The mesh end to end on a real node: the Trellis images built by `npm run images`, imported into
// the real node's containerd; the control plane (destination, identity, injector) running as pods
// from them; a client and a server Deployment (2 replicas each) in a meshed namespace, where the
// real webhook injects the proxy as a native sidecar. The client sends a steady stream over
// HTTP/1.1 and HTTP/2 through its outbound proxy, mTLS to the server's inbound proxy; every
// request is counted (test/e2e/traffic.ts). With that traffic flowing:
//
//   1. a proxy rollout 0.1.0 → 0.1.1 through the canary, the operator SIGKILLed mid-rollout;
//   2. an automatic trust-anchor rotation, the operator SIGKILLed mid-rotation;
//   3. a broken proxy version (never ready), caught by the canary and rolled back;
//   4. a server pod admitted without a proxy (webhook gone, operator stopped), repaired.
//
// The operator runs on the host, from the same bundle the operator image holds: killing it
// with SIGKILL and starting its successor is then a process kill, not a Deployment restart
// racing the kubelet, and its log is a file the test reads. Everything else runs in pods.
// Proxies reach identity and destination by their Service names (the harness's DNS answers with
// endpoint pod IPs; test/cluster/cluster-dns.ts); the API server calls the injector the same way.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api } from "@kubernetes/client-node";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";
import { controlPlaneOutage } from "./control-plane-outage.ts";
import {
  buildAppImage,
  buildTrellisImages,
  controlPlaneOnRealNode,
  demoWorkloads,
  meshedNamespace,
} from "./mesh-demo.ts";
import { formatTable, TrafficCollector } from "./traffic.ts";

const NS = "demo";
const TD = "spiffe://cluster.local";
const V0 = "0.1.0";
const V1 = "0.1.1";
const BROKEN = "0.1.2-broken";

interface MeshView {
  status?: {
    phase?: string;
    rollout?: { state?: string; step?: number; toVersion?: string; message?: string };
    repair?: { state?: string; message?: string };
    proxies?: { summary?: string; version?: string; missing?: number };
    trustAnchor?: { rotationPhase?: string; generation?: number; fingerprint?: string; message?: string };
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
  };
}

interface PodView {
  name: string;
  app: string;
  ip: string;
  ready: boolean;
  deleting: boolean;
  proxyVersion: string | undefined;
  annotations: Record<string, string>;
  replicaSet: string;
  proxyImage: string | undefined;
}

describe("the mesh end to end on a real node", { timeout: 1_500_000 }, () => {
  let cluster: LocalCluster;
  let core: CoreV1Api;
  let operator: OperatorProcess;
  let operatorBundle: string;
  let traffic: TrafficCollector;
  const timeline: string[] = [];
  const note = (line: string) => {
    timeline.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    process.stderr.write(`e2e: ${line}\n`);
  };

  const mesh = () => JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as MeshView;
  const pods = async (): Promise<PodView[]> =>
    (await core.listNamespacedPod({ namespace: NS })).items.map((p) => {
      const proxy = p.spec?.initContainers?.find((c) => c.name === "trellis-proxy");
      return {
        name: p.metadata?.name ?? "",
        app: p.metadata?.labels?.app ?? "",
        ip: p.status?.podIP ?? "",
        ready: p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
        deleting: Boolean(p.metadata?.deletionTimestamp),
        proxyVersion: p.metadata?.labels?.["trellis.dev/proxy-version"],
        annotations: p.metadata?.annotations ?? {},
        replicaSet: p.metadata?.ownerReferences?.[0]?.name ?? "",
        proxyImage: proxy?.image,
      };
    });
  /** ReplicaSets per Deployment: 1 + the number of times it was restarted (or rolled back). */
  const replicaSets = () => {
    const out = cluster.kubectl([
      "-n",
      NS,
      "get",
      "rs",
      "-o",
      "jsonpath={range .items[*]}{.metadata.ownerReferences[0].name}{'\\n'}{end}",
    ]);
    const counts: Record<string, number> = {};
    for (const line of out.trim().split("\n")) counts[line] = (counts[line] ?? 0) + 1;
    return counts;
  };
  /** Four pods, all Ready on `version`; and, unless after a rollback, the Mesh counting them up to date. */
  const settled = async (version: string, summary = "4/4") => {
    const all = await pods();
    return (
      all.length === 4 &&
      all.every((p) => p.ready && !p.deleting && p.proxyVersion === version) &&
      mesh().status?.proxies?.summary === summary
    );
  };
  const restartOperator = async (why: string) => {
    await operator.kill();
    note(`operator SIGKILLed ${why}`);
    operator = await startOperator(cluster, ["--no-leader-elect"], {}, operatorBundle);
    note("operator restarted");
  };
  const diagnose = async (err: Error) => {
    const status = JSON.stringify(mesh().status);
    const podList = cluster.kubectl(["get", "pods", "-A", "-o", "wide"]);
    const described = cluster.kubectl(["-n", NS, "describe", "pods"]).slice(-6000);
    const errors = [...(traffic?.errors ?? [])].map(([p, e]) => `${p}: ${e.slice(-5).join("; ")}`).join("\n");
    return new Error(`${err.message}\nmesh status: ${status}\n${podList}\n${described}\n${errors}`);
  };

  before(async () => {
    const started = Date.now();
    // Two builds: the release (operator, control plane, proxy 0.1.0), then the next proxy
    // version and a broken one. Same inputs, so the shared layers are identical.
    const release = await buildTrellisImages({ version: V0 }, ["controlplane", "proxy"]);
    const next = await buildTrellisImages({ version: V0, proxyVersion: V1, brokenProxy: BROKEN }, [
      "proxy",
      "proxy-never-ready",
    ]);
    const archives = [...release.images, ...next.images];
    operatorBundle = join(release.out, "dist", "trellis.mjs");
    const appArchive = await buildAppImage();
    note(`images built in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    cluster = await LocalCluster.start({ nodes: 1, realNode: true });
    note(`real node Ready ${(cluster.realNode.readyAfterMs / 1000).toFixed(1)} s after the cluster`);
    for (const image of archives) await cluster.realNode.importImage(image.archive);
    await cluster.realNode.importImage(appArchive);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);

    await installCrds(cluster);
    operator = await startOperator(cluster, ["--no-leader-elect"], {}, operatorBundle);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: ${V0}
  controlPlane:
    imageRegistry: localhost/trellis${controlPlaneOnRealNode}
    resources: { requests: { cpu: 10m, memory: 32Mi }, limits: { memory: 256Mi } }
  proxy: { resources: { requests: { cpu: 10m, memory: 20Mi }, limits: { memory: 128Mi } } }
  # Proxies renew at ~70% of this, which is what moves a rotation past IssuerSwitched.
  identity: { leafLifetime: 2m }
  upgrade:
    canary: { percent: 50 }
    waves: [100]
    maxConcurrentRestarts: 1
    analysis: { interval: 5s }
    stepDeadline: 45s
`,
    );
    const installStarted = Date.now();
    await waitFor(async () => mesh().status?.phase === "Ready", 180_000, "the Mesh Ready").catch(
      async (e) => {
        throw await diagnose(e);
      },
    );
    note(`control plane Ready in pods ${((Date.now() - installStarted) / 1000).toFixed(1)} s after the Mesh`);

    const injecting = await meshedNamespace(cluster, NS).catch(async (e) => {
      throw await diagnose(e);
    });
    note(`injection effective ${injecting.toFixed(1)} s after the namespace was annotated`);
    cluster.kubectl(["apply", "-f", "-"], demoWorkloads(NS, 10));
    await waitFor(async () => settled(V0), 180_000, "client and server pods Ready with proxy 0.1.0").catch(
      async (e) => {
        throw await diagnose(e);
      },
    );
    traffic = new TrafficCollector(async () =>
      (await pods()).filter((p) => p.app === "client" && p.ip).map((p) => ({ name: p.name, ip: p.ip })),
    );
    traffic.start("before");
    await waitFor(
      async () => traffic.samples.filter((s) => s.ok).length > 200,
      60_000,
      "traffic to flow",
    ).catch(async (e) => {
      throw await diagnose(e);
    });
  });

  after(async () => {
    if (traffic) {
      await traffic.stop();
      process.stderr.write(`\nrequests through the mesh, by phase:\n${formatTable(traffic.figures())}\n`);
      process.stderr.write(`timeline:\n${timeline.join("\n")}\n`);
    }
    await operator?.stop();
    await cluster?.stop();
  });

  it("injects the proxy as a native sidecar and carries mTLS traffic with verified identities", async () => {
    const all = await pods();
    for (const p of all) {
      assert.equal(p.proxyVersion, V0, p.name);
      assert.equal(p.proxyImage, `localhost/trellis/proxy:${V0}`, p.name);
    }
    const pod = await core.readNamespacedPod({ name: all[0]?.name ?? "", namespace: NS });
    assert.equal(pod.spec?.initContainers?.[0]?.name, "trellis-proxy");
    assert.equal(pod.spec?.initContainers?.[0]?.restartPolicy, "Always");
    // The server's inbound proxy verified the client's certificate and passed its identity on.
    await traffic.flush();
    const ids = new Set([...traffic.clientIds.keys()].map((k) => k.split(" ")[1]));
    assert.deepEqual([...ids], [`${TD}/ns/${NS}/sa/client`]);
    // Both server replicas answer (the client's proxy balances over the endpoints it discovered).
    const servers = new Set([...traffic.servers.keys()].map((k) => k.split(" ")[1]));
    assert.deepEqual(
      [...servers].sort(),
      all
        .filter((p) => p.app === "server")
        .map((p) => p.name)
        .sort(),
    );
    // The proxies' own metrics name the peer of each mTLS connection.
    const server = all.find((p) => p.app === "server") as PodView;
    const inbound = await fetch(`http://${server.ip}:4191/metrics`).then((r) => r.text());
    assert.match(
      inbound,
      new RegExp(
        `request_total\\{[^}]*direction="inbound"[^}]*tls="mtls"[^}]*peer_identity="${TD}/ns/${NS}/sa/client"`,
      ),
    );
    const client = all.find((p) => p.app === "client") as PodView;
    const outbound = await fetch(`http://${client.ip}:4191/metrics`).then((r) => r.text());
    assert.match(outbound, new RegExp(`peer_identity="${TD}/ns/${NS}/sa/server"`));
    const before = traffic.figures().find((f) => f.phase === "before");
    assert.equal(
      before?.failed,
      0,
      `failed before any change: ${JSON.stringify(traffic.failedIn("before").slice(0, 5))}`,
    );
  });

  it("rolls proxy 0.1.1 out through the canary with zero failed requests, across an operator kill", async () => {
    const rsBefore = replicaSets();
    traffic.phase("proxy rollout");
    note(`proxy rollout ${V0} → ${V1}`);
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      `{"spec":{"proxy":{"version":"${V1}"}}}`,
    ]);
    await waitFor(
      async () => mesh().status?.rollout?.toVersion === V1 && (mesh().status?.rollout?.step ?? 0) >= 0,
      60_000,
      "the rollout to start",
    );
    // Kill the operator while the canary restarts, before it is judged.
    await waitFor(
      async () => (await pods()).some((p) => p.proxyVersion === V1),
      60_000,
      "a canary pod on 0.1.1",
    );
    await restartOperator(`with rollout at ${JSON.stringify(mesh().status?.rollout)}`);
    await waitFor(
      async () => mesh().status?.rollout?.state === "Complete" && (await settled(V1)),
      300_000,
      "the rollout to complete",
    ).catch(async (e) => {
      throw await diagnose(e);
    });
    note("proxy rollout complete");
    traffic.phase("after rollout");
    await new Promise((r) => setTimeout(r, 15_000));
    await traffic.flush();
    const rs = replicaSets();
    for (const d of ["client", "server"])
      assert.equal(rs[d], (rsBefore[d] ?? 0) + 1, `${d} restarted exactly once`);
    for (const phase of ["proxy rollout", "after rollout"]) {
      const failed = traffic.failedIn(phase);
      assert.equal(
        failed.length,
        0,
        `${phase}: ${JSON.stringify(failed.slice(0, 5))} ${JSON.stringify([...traffic.errors])}`,
      );
    }
    for (const p of await pods()) assert.equal(p.proxyImage, `localhost/trellis/proxy:${V1}`, p.name);
  });

  it("rotates the trust anchor with zero failed requests, across an operator kill", async () => {
    const old = mesh().status?.trustAnchor;
    assert.equal(old?.rotationPhase, "Stable");
    const rsBefore = replicaSets();
    traffic.phase("anchor rotation");
    note("trust-anchor rotation requested");
    cluster.kubectl(["annotate", "mesh", "default", "--overwrite", "trellis.dev/rotate-trust-anchor=e2e"]);
    const phases: string[] = [];
    const track = async () => {
      const anchor = mesh().status?.trustAnchor;
      const phase = anchor?.rotationPhase ?? "?";
      if (phases.at(-1) !== phase) {
        phases.push(phase);
        note(`rotation phase ${phase}: ${anchor?.message ?? ""}`);
      }
      return phase;
    };
    await waitFor(async () => (await track()) === "BundlePublished", 120_000, "the new anchor in the bundle");
    await restartOperator("with the rotation at BundlePublished");
    await waitFor(
      async () =>
        (await track()) === "Stable" && mesh().status?.trustAnchor?.generation === (old?.generation ?? 1) + 1,
      480_000,
      "the rotation to complete",
    ).catch(async (e) => {
      throw await diagnose(new Error(`${e.message}; phases ${phases.join(" → ")}`));
    });
    const next = mesh().status?.trustAnchor?.fingerprint as string;
    assert.notEqual(next, old?.fingerprint);
    assert.ok(phases.includes("IssuerSwitched"), phases.join(" → "));
    // Every proxy reports a leaf chained to the new anchor and a bundle of the new anchor only.
    await waitFor(
      async () =>
        (await pods()).every(
          (p) =>
            p.annotations["trellis.dev/leaf-anchor-fingerprint"] === next &&
            p.annotations["trellis.dev/trust-bundle-fingerprints"] === next,
        ),
      120_000,
      "every proxy on the new anchor only",
    );
    // And each proxy says so itself, on its admin port.
    for (const p of await pods()) {
      const held = (await fetch(`http://${p.ip}:4191/identity`).then((r) => r.json())) as {
        spiffeId?: string;
        leafAnchorFingerprint?: string;
        trustBundleFingerprints?: string[];
      };
      assert.equal(held.leafAnchorFingerprint, next, `${p.name}'s leaf`);
      assert.deepEqual(held.trustBundleFingerprints, [next], `${p.name}'s bundle`);
      assert.equal(held.spiffeId, `${TD}/ns/${NS}/sa/${p.app}`);
    }
    traffic.phase("after rotation");
    await new Promise((r) => setTimeout(r, 15_000));
    await traffic.flush();
    assert.deepEqual(replicaSets(), rsBefore, "a rotation restarts no workload");
    for (const phase of ["anchor rotation", "after rotation"]) {
      const failed = traffic.failedIn(phase);
      assert.equal(
        failed.length,
        0,
        `${phase}: ${JSON.stringify(failed.slice(0, 5))} ${JSON.stringify([...traffic.errors])}`,
      );
    }
  });

  it("keeps every request flowing while destination and identity are down past a leaf lifetime, and frozen", async () => {
    const report = await controlPlaneOutage({
      cluster,
      traffic,
      namespace: NS,
      note,
      leafLifetimeMs: 120_000,
      stopOperator: () => operator.kill(),
      startOperator: async () => {
        operator = await startOperator(cluster, ["--no-leader-elect"], {}, operatorBundle);
      },
    }).catch(async (e) => {
      throw await diagnose(e);
    });
    await traffic.flush();
    process.stderr.write(`\ncontrol-plane outage, evidence:\n${report.evidence.join("\n")}\n`);
    assert.ok(report.downSeconds > 120, `down ${report.downSeconds} s, longer than the 2m leaf lifetime`);
    assert.ok(report.meshEvents.includes("ComponentsUnavailable"), report.meshEvents.join(", "));
    assert.ok(report.meshEvents.includes("ComponentsAvailable"), report.meshEvents.join(", "));
    for (const phase of report.phases) {
      const failed = traffic.failedIn(phase);
      assert.equal(
        failed.length,
        0,
        `${phase}: ${JSON.stringify(failed.slice(0, 5))} ${JSON.stringify([...traffic.errors])}`,
      );
    }
  });

  it("catches a broken proxy version in the canary and rolls it back, failures confined to the canary", async () => {
    const before = new Set((await pods()).map((p) => p.name));
    const rsBefore = replicaSets();
    traffic.phase("broken proxy");
    note(`proxy rollout ${V1} → ${BROKEN} (never ready)`);
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      `{"spec":{"proxy":{"version":"${BROKEN}"}}}`,
    ]);
    await waitFor(async () => mesh().status?.rollout?.state === "RolledBack", 240_000, "the rollback").catch(
      async (e) => {
        throw await diagnose(e);
      },
    );
    const degraded = mesh().status?.conditions?.find((c) => c.type === "Degraded");
    note(`rolled back: ${degraded?.reason}: ${degraded?.message}`);
    assert.equal(degraded?.reason, "RolloutFailed");
    // The fleet is back on 0.1.1: the Mesh counts proxies against the fleet's version after a
    // rollback (issue 17), so 4/4 on 0.1.1.
    await waitFor(
      async () => (await settled(V1, "4/4")) && mesh().status?.proxies?.version === V1,
      180_000,
      "everything back on 0.1.1",
    ).catch(async (e) => {
      throw await diagnose(e);
    });
    traffic.phase("after rollback");
    await new Promise((r) => setTimeout(r, 15_000));
    await traffic.flush();
    const rs = replicaSets();
    const touched = Object.keys(rs).filter((d) => rs[d] !== rsBefore[d]);
    assert.equal(touched.length, 1, `only the canary workload was touched: ${JSON.stringify(rs)}`);
    // Failed requests, if any, came only from pods created for the canary (never the old ones).
    const failed = traffic.failedIn("broken proxy");
    const failingPods = new Set(failed.map((s) => s.pod));
    for (const pod of failingPods)
      assert.ok(!before.has(pod), `failure from ${pod}, which is not a canary pod`);
    note(
      `broken version: ${failed.length} failed requests, from ${[...failingPods].join(", ") || "no pod"} (canary: ${touched[0]})`,
    );
    assert.equal(traffic.failedIn("after rollback").length, 0);
  });

  it("repairs a server pod admitted without a proxy with zero failed requests (issue 21)", async () => {
    // With the operator stopped and the injector's webhook configuration gone, a third server
    // replica comes up without a proxy (the meshed clients reach it in plaintext on its port).
    await operator.stop();
    cluster.kubectl(["delete", "mutatingwebhookconfiguration", "trellis-proxy-injector"]);
    cluster.kubectl(["-n", NS, "scale", "deployment", "server", "--replicas=3"]);
    await waitFor(
      async () => (await pods()).some((p) => p.app === "server" && p.ready && !p.deleting && !p.proxyVersion),
      120_000,
      "a server pod without a proxy",
    ).catch(async (e) => {
      throw await diagnose(e);
    });
    const rsBefore = replicaSets();
    traffic.phase("repair");
    note("operator started again with a server pod without a proxy");
    operator = await startOperator(cluster, ["--no-leader-elect"], {}, operatorBundle);
    await waitFor(
      async () => mesh().status?.proxies?.missing === 1,
      60_000,
      "the pod reported missing",
    ).catch(async (e) => {
      throw await diagnose(e);
    });
    await waitFor(
      async () => {
        const server = (await pods()).filter((p) => p.app === "server" && !p.deleting);
        return (
          mesh().status?.repair?.state === "Complete" &&
          !mesh().status?.proxies?.missing &&
          server.length === 3 &&
          server.every((p) => p.ready && p.proxyVersion === V1)
        );
      },
      300_000,
      "the repair to complete",
    ).catch(async (e) => {
      throw await diagnose(e);
    });
    note(`repair complete: ${mesh().status?.repair?.message}`);
    traffic.phase("after repair");
    await new Promise((r) => setTimeout(r, 15_000));
    await traffic.flush();
    const rs = replicaSets();
    assert.equal(rs.server, (rsBefore.server ?? 0) + 1, "the server restarted exactly once");
    assert.equal(rs.client, rsBefore.client, "the client untouched");
    for (const phase of ["repair", "after repair"]) {
      const failed = traffic.failedIn(phase);
      assert.equal(failed.length, 0, `${phase}: ${JSON.stringify(failed.slice(0, 5))}`);
    }
  });
});
