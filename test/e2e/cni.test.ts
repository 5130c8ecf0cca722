// Capture without privileged pods, on the real node (issue 22): the Mesh's capture mode CNI.
//
//   1. InitContainer mode: a namespace enforcing the `restricted` Pod Security Standard refuses
//      a meshed pod (trellis-init holds NET_ADMIN and NET_RAW), with the capture issue's warning.
//   2. The node-start race: a pod meshed in CNI mode before trellis-cni is on its node is refused
//      by its validator, with the cause in its status.
//   3. Switching the Mesh to CNI, with the end-to-end test's demo running in another namespace:
//      the DaemonSet installs the plugin into the node's CNI folders (the harness's own, under the
//      cluster's dir, as its containerd config names them) and chains it after the harness's own
//      chained plugin, which keeps working; then the canaried rollout moves the demo's pods to CNI
//      with zero failed requests.
//   4. The refused pod is restarted by the operator and succeeds.
//   5. The same unmodified demo applications as the end-to-end test (HTTP/1.1, HTTP/2, gRPC and
//      a server-first TCP protocol), in the restricted namespace: admitted, meshed, every class
//      over mTLS between their proxies with the peers' identities, none failed.
//   6. Switching back: the rollout moves the demo's pods back to trellis-init with zero failed
//      requests, then every node's CNI configuration is restored byte for byte and the DaemonSet
//      deleted.
//   7. Removing a Mesh in CNI mode: the same restoration, byte for byte.
// The operator runs on the host from the release bundle (as in mesh.test.ts); everything else
// runs in pods of the real node from the images `npm run images` builds.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { chainPlugin } from "../../cni/conflist.ts";
import { LocalCluster, REAL_NODE_LABEL, waitFor } from "../cluster/local-cluster.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";
import {
  APP_IMAGE,
  buildAppImage,
  buildTrellisImages,
  cniFolders,
  controlPlaneOnRealNode,
  demoTargets,
  demoWorkloads,
  E2E_REQUEST_TIMEOUT_MS,
} from "./mesh-demo.ts";
import { proxyMetrics, sumWhere } from "./proxy-metrics-text.ts";
import { formatTable, TrafficCollector } from "./traffic.ts";

const V0 = "0.1.0";
const TD = "spiffe://cluster.local";
const LOCKED = "locked";
/** The end-to-end test's demo, unrestricted, whose traffic crosses both mode switches. */
const DEMO = "demo";
const RACE = "race";

/** Every file of a folder, name → bytes (links as their target). */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    out.set(
      name.name,
      name.isSymbolicLink()
        ? `-> ${readlinkSync(path)}`
        : name.isFile()
          ? readFileSync(path, "latin1")
          : "dir",
    );
  }
  return out;
}

const placement = `
      nodeSelector: { ${REAL_NODE_LABEL}: "true" }
      tolerations: [{ key: ${REAL_NODE_LABEL}, operator: Exists, effect: NoSchedule }]`;

/** One demo server (test/e2e/mesh-app.ts) whose workload a rollout put in CNI mode. */
function earlyServer(namespace: string): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: early, namespace: ${namespace}, labels: { app: early } }
spec:
  replicas: 1
  selector: { matchLabels: { app: early } }
  template:
    metadata: { labels: { app: early }, annotations: { trellis.dev/capture-mode: CNI } }
    spec:${placement}
      containers:
      - name: server
        image: ${APP_IMAGE}
        imagePullPolicy: Never
        args: ["/app/mesh-app.mjs"]
        env: [{ name: MESH_APP_ROLE, value: server }, { name: PORT, value: "8080" }]
        ports: [{ name: http, containerPort: 8080 }]
        securityContext: { runAsUser: 1000, runAsNonRoot: true, readOnlyRootFilesystem: true }
`;
}

describe("capture without privileged pods: the trellis-cni plugin on a real node", {
  timeout: 900_000,
}, () => {
  let cluster: LocalCluster;
  let core: CoreV1Api;
  let operator: OperatorProcess;
  let folders: { binDir: string; confDir: string };
  let originalConf: Map<string, string>;
  let originalBin: Map<string, string>;
  let demo: TrafficCollector | undefined;
  const timeline: string[] = [];
  const note = (line: string) => {
    timeline.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    process.stderr.write(`cni: ${line}\n`);
  };
  const mesh = () =>
    JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as {
      status?: {
        phase?: string;
        capture?: { mode?: string; cni?: { phase?: string; message?: string } };
        proxies?: { version?: string; summary?: string };
        rollout?: { state?: string; toVersion?: string; message?: string };
      };
    };
  const podsOf = async (namespace: string, app: string): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items.filter(
      (p) => !p.metadata?.deletionTimestamp,
    );
  const ready = (p: V1Pod) =>
    p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  const diagnose = async (err: Error) => {
    const status = JSON.stringify(mesh().status);
    const pods = cluster.kubectl(["get", "pods", "-A", "-o", "wide"]);
    const described = cluster.kubectl(["describe", "pods", "-n", RACE]).slice(-3000);
    const cni = cluster.kubectl([
      "-n",
      "trellis-system",
      "describe",
      "pods",
      "-l",
      "app.kubernetes.io/name=trellis-cni",
    ]);
    return new Error(
      `${err.message}\nmesh: ${status}\n${pods}\n${described}\n${cni.slice(-3000)}\n${timeline.join("\n")}`,
    );
  };
  /** The demo's four pods, Ready, all in capture `mode` (the label the injector stamps). */
  const demoOn = async (mode: string) => {
    const pods = [...(await podsOf(DEMO, "server")), ...(await podsOf(DEMO, "client"))];
    return (
      pods.length === 4 &&
      pods.every((p) => ready(p) && p.metadata?.labels?.["trellis.dev/capture-mode"] === mode)
    );
  };
  /** The rollout to `revision` complete and the demo's pods on `mode`. */
  const rolledTo = async (revision: string, mode: string) => {
    const s = mesh().status;
    return s?.proxies?.version === revision && s.rollout?.state === "Complete" && (await demoOn(mode));
  };
  /**
   * Zero failed exchanges of every class in a phase: HTTP/1.1, HTTP/2, gRPC and the server-first
   * TCP protocol (a new connection per exchange). The baseline stretch before the switches is
   * shown in the table, not asserted: it measures the machine.
   */
  const assertClean = (phase: string, collector = demo) => {
    const failed = collector?.failedIn(phase) ?? [];
    assert.equal(failed.length, 0, failures(phase, collector));
  };
  const setCaptureMode = (mode: "InitContainer" | "CNI") =>
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      JSON.stringify({ spec: { proxy: { capture: { mode } } } }),
    ]);
  /** The failed requests of a phase and each client's last errors, for a failure message. */
  const failures = (phase: string, collector = demo) =>
    `${phase}: ${JSON.stringify(collector?.failedIn(phase).slice(0, 5))}\n${formatTable(collector?.figures() ?? [])}\n${[
      ...(collector?.errors ?? []),
    ]
      .map(([p, e]) => `${p}: ${e.slice(-5).join("; ")}`)
      .join("\n")}`;
  const until = (what: string, ok: () => Promise<boolean> | boolean, ms = 180_000) =>
    waitFor(async () => ok(), ms, what, 1000).catch(async (e) => {
      throw await diagnose(e as Error);
    });

  before(async () => {
    const started = Date.now();
    const release = await buildTrellisImages({ version: V0 }, ["controlplane", "init", "cni", "proxy"]);
    const appArchive = await buildAppImage();
    note(`images built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    cluster = await LocalCluster.start({ nodes: 1, realNode: true });
    for (const image of release.images) await cluster.realNode.importImage(image.archive);
    await cluster.realNode.importImage(appArchive);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    folders = cniFolders(cluster.dir);
    originalConf = snapshot(folders.confDir);
    originalBin = snapshot(folders.binDir);
    await installCrds(cluster);
    operator = await startOperator(
      cluster,
      ["--no-leader-elect"],
      {},
      join(release.out, "dist", "trellis.mjs"),
    );
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
  proxy:
    resources: { requests: { cpu: 10m, memory: 20Mi }, limits: { memory: 128Mi } }
    capture:
      mode: InitContainer
      cni: { binDir: ${folders.binDir}, confDir: ${folders.confDir} }
  upgrade:
    canary: { percent: 50 }
    waves: [100]
    maxConcurrentRestarts: 1
    analysis: { interval: 5s }
    stepDeadline: 90s
`,
    );
    await until("the Mesh Ready", () => mesh().status?.phase === "Ready");
    note("mesh Ready (InitContainer mode)");
    for (const [ns, restricted] of [
      [LOCKED, true],
      [RACE, false],
      [DEMO, false],
    ] as const) {
      cluster.kubectl(
        ["apply", "-f", "-"],
        `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
  annotations: { trellis.dev/inject: enabled }
  labels: ${restricted ? "{ pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: latest }" : "{}"}
`,
      );
    }
  });

  after(async () => {
    await demo?.stop();
    if (demo) process.stderr.write(`requests of the demo, by phase:\n${formatTable(demo.figures())}\n`);
    process.stderr.write(`timeline:\n${timeline.join("\n")}\n`);
    await operator?.stop();
    await cluster?.stop();
  });

  it("InitContainer mode: the restricted namespace refuses a meshed pod, with the capture issue's warning", async () => {
    const pod = JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "probe", namespace: LOCKED },
      spec: {
        containers: [
          {
            name: "app",
            image: APP_IMAGE,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 1000,
              allowPrivilegeEscalation: false,
              capabilities: { drop: ["ALL"] },
              seccompProfile: { type: "RuntimeDefault" },
            },
          },
        ],
      },
    });
    let refusal = "";
    await until("the injector to mesh the restricted namespace (and Pod Security to refuse it)", () => {
      try {
        cluster.kubectl(["create", "--dry-run=server", "-o", "name", "-f", "-"], pod);
        return false;
      } catch (err) {
        refusal = (err as Error).message;
        return refusal.includes("trellis-init");
      }
    });
    assert.match(refusal, /violates PodSecurity "restricted:latest"/);
    assert.match(refusal, /NET_ADMIN/);
    assert.match(
      refusal,
      /enforces Pod Security "restricted", which forbids NET_ADMIN and NET_RAW for trellis-init/,
    );
    note("InitContainer mode refused under restricted");
  });

  it("the race: a pod meshed in CNI mode before the plugin is on its node is refused by its validator", async () => {
    cluster.kubectl(["apply", "-f", "-"], earlyServer(RACE));
    let message = "";
    await until("the validator to refuse the early pod", async () => {
      const [p] = await podsOf(RACE, "early");
      const v = p?.status?.initContainerStatuses?.find((c) => c.name === "trellis-validate");
      const terminated = v?.state?.terminated ?? v?.lastState?.terminated;
      message = terminated?.message ?? "";
      return terminated !== undefined && terminated.exitCode !== 0;
    });
    assert.match(message, /this pod's traffic is not captured/);
    assert.match(message, /started before trellis-cni was installed on its node/);
    assert.equal(mesh().status?.capture?.mode ?? "InitContainer", "InitContainer");
    note("early CNI-mode pod refused by its validator");
  });

  it("the end-to-end demo runs in InitContainer mode, its traffic flowing", async () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      demoWorkloads(DEMO, 2, { requestTimeoutMs: E2E_REQUEST_TIMEOUT_MS }),
    );
    await until("the demo's pods Ready in InitContainer mode", () => demoOn("InitContainer"));
    const clients = await podsOf(DEMO, "client");
    const collector = new TrafficCollector(async () =>
      (await podsOf(DEMO, "client")).map((p) => ({
        name: p.metadata?.name ?? "",
        ip: p.status?.podIP ?? "",
      })),
    );
    demo = collector;
    collector.start("warm-up");
    const classes = demoTargets(DEMO)
      .split(",")
      .map((t) => t.split("=")[0] ?? "");
    await until("every class of the demo answered", () => {
      const answered = new Set([...collector.servers.keys()].map((k) => k.split(" ")[1]));
      return classes.every((c) => answered.has(c));
    });
    collector.phase("InitContainer");
    // A steady stretch before any switch: the baseline the switches' phases compare with.
    await new Promise((r) => setTimeout(r, 20_000));
    assert.equal(clients.length, 2);
    note("demo running in InitContainer mode");
  });

  it("CNI mode: trellis-cni installed on the node and chained after the harness's own plugin", async () => {
    demo?.phase("switch to CNI");
    setCaptureMode("CNI");
    const switched = Date.now();
    await until("the fleet to switch to CNI", () => mesh().status?.capture?.mode === "CNI");
    note(
      `plugin installed and fleet on CNI ${((Date.now() - switched) / 1000).toFixed(1)} s after the switch`,
    );
    const [file = ""] = [...originalConf.keys()];
    const chained = chainPlugin(originalConf.get(file) ?? "");
    assert.ok(chained.ok);
    assert.equal(readFileSync(join(folders.confDir, file), "latin1"), chained.text);
    const plugins = (JSON.parse(chained.text) as { plugins: Array<{ type: string }> }).plugins.map(
      (p) => p.type,
    );
    assert.deepEqual(plugins, ["bridge", "trellis-api-redirect", "trellis-cni"]);
    const bin = snapshot(folders.binDir);
    for (const [name, target] of originalBin) assert.equal(bin.get(name), target, name);
    assert.ok(bin.has("trellis-cni") && bin.has("trellis-cni.d"));
  });

  it("the canaried rollout moves the demo's pods to CNI with zero failed requests", async () => {
    const started = Date.now();
    await until("the rollout to CNI complete", () => rolledTo(`${V0}/cni`, "CNI"), 300_000);
    demo?.phase("CNI");
    note(`demo rolled to CNI ${((Date.now() - started) / 1000).toFixed(1)} s after the plugin was ready`);
    for (const p of [...(await podsOf(DEMO, "server")), ...(await podsOf(DEMO, "client"))])
      assert.deepEqual(
        p.spec?.initContainers?.map((c) => c.name),
        ["trellis-validate", "trellis-proxy"],
      );
    await demo?.flush();
    assertClean("switch to CNI");
  });

  it("the refused pod is restarted once the plugin is ready, and starts captured", async () => {
    await until("the race pod to run captured", async () => {
      const pods = await podsOf(RACE, "early");
      return pods.length === 1 && ready(pods[0] as V1Pod);
    });
    const [p] = await podsOf(RACE, "early");
    const v = p?.status?.initContainerStatuses?.find((c) => c.name === "trellis-validate");
    assert.equal(v?.state?.terminated?.exitCode, 0);
    assert.equal(v?.restartCount, 0, "a new pod, captured from the start");
    const events = cluster.kubectl([
      "get",
      "events",
      "-A",
      "--field-selector",
      "reason=RestartedUncapturedPod",
      "-o",
      "name",
    ]);
    assert.notEqual(events.trim(), "", "the operator says what it restarted");
    note("race pod restarted by the operator and Ready");
  });

  it("restricted namespace, CNI mode: the demo apps admitted and meshed, mTLS with peer identities", async () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      demoWorkloads(LOCKED, 2, { restricted: true, replicas: 1, requestTimeoutMs: E2E_REQUEST_TIMEOUT_MS }),
    );
    const meshed = async () => [...(await podsOf(LOCKED, "server")), ...(await podsOf(LOCKED, "client"))];
    await until("the demo's servers and clients Ready in the restricted namespace", async () => {
      const pods = await meshed();
      return pods.length === 2 && pods.every(ready);
    });
    const pods = await meshed();
    for (const p of pods) {
      assert.deepEqual(
        p.spec?.initContainers?.map((c) => c.name),
        ["trellis-validate", "trellis-proxy"],
      );
      for (const c of [...(p.spec?.initContainers ?? []), ...(p.spec?.containers ?? [])])
        assert.equal(c.securityContext?.capabilities?.add, undefined, `${p.metadata?.name}/${c.name}`);
    }
    const clients = pods.filter((p) => p.metadata?.labels?.app === "client");
    const traffic = new TrafficCollector(async () =>
      clients.map((p) => ({ name: p.metadata?.name ?? "", ip: p.status?.podIP ?? "" })),
    );
    traffic.start("cni");
    // Every class of the demo (HTTP/1.1 and HTTP/2 to both names, gRPC, the server-first
    // protocol) answered through the mesh, none failed.
    const classes = demoTargets(LOCKED)
      .split(",")
      .map((t) => t.split("=")[0] ?? "");
    const answered = () => new Set([...traffic.servers.keys()].map((k) => k.split(" ")[1]));
    await until("every class answered", () => classes.every((c) => answered().has(c)), 90_000).catch(
      (err: Error) => {
        const errors = [...traffic.errors].map(([p, e]) => `${p}: ${e.slice(-5).join("; ")}`).join("\n");
        throw new Error(`${err.message}\nanswered: ${[...answered()].join(", ")}\n${errors}`);
      },
    );
    // The proxies count it as mTLS with the peer's identity on both sides: each client's outbound
    // proxy, and the servers' inbound proxies (together: the client's proxy balances). Counted
    // over a window after every class was answered, so that requests sent while the servers were
    // still starting (the destination service learns of their proxies as they come up) are not.
    const clientId = `${TD}/ns/${LOCKED}/sa/client`;
    const serverId = `${TD}/ns/${LOCKED}/sa/server`;
    const counters = async () =>
      Promise.all(
        pods.map(async (p) => {
          const text = await proxyMetrics(p.status?.podIP ?? "");
          const server = p.metadata?.labels?.app === "server";
          const side = server ? "inbound" : "outbound";
          const peer = server ? clientId : serverId;
          return {
            name: p.metadata?.name ?? "",
            server,
            http: sumWhere(text, "request_total", { direction: side, tls: "mtls", peer_identity: peer }),
            // Relayed TCP streams (outbound), connections accepted from a verified peer (inbound).
            tcp:
              sumWhere(text, "tcp_forward_total", { direction: side, tls: "mtls", peer_identity: peer }) +
              sumWhere(text, "tcp_open_total", { direction: side, tls: "mtls", peer_identity: peer }),
            plain: sumWhere(text, "request_total", { direction: side, tls: "none" }),
          };
        }),
      );
    const before = await counters();
    traffic.phase("cni, settled");
    await new Promise((r) => setTimeout(r, 8000));
    const after = await counters();
    await traffic.stop();
    const delta = after.map((a, i) => ({
      ...a,
      http: a.http - (before[i]?.http ?? 0),
      tcp: a.tcp - (before[i]?.tcp ?? 0),
      plain: a.plain - (before[i]?.plain ?? 0),
    }));
    // What was carried, counted since the start (an inbound TCP stream may be counted when it
    // ends); what was plaintext, over the settled window only.
    for (const [i, c] of after.entries()) {
      const side = c.server ? "from" : "to";
      const peer = c.server ? clientId : serverId;
      if (!c.server) assert.ok(c.http > 0, `${c.name}: HTTP and gRPC over mTLS ${side} ${peer}`);
      if (!c.server) assert.ok(c.tcp > 0, `${c.name}: the server-first protocol over mTLS ${side} ${peer}`);
      assert.equal(delta[i]?.plain, 0, `${c.name}: plaintext requests once settled`);
    }
    const servers = async () => (await counters()).filter((d) => d.server);
    await until(
      `the servers' inbound proxies to count HTTP, gRPC and the server-first protocol over mTLS from ${clientId}`,
      async () => {
        const now = await servers();
        return now.reduce((n, c) => n + c.http, 0) > 0 && now.reduce((n, c) => n + c.tcp, 0) > 0;
      },
      30_000,
    ).catch(async (err: Error) => {
      const texts = await Promise.all(
        pods
          .filter((p) => p.metadata?.labels?.app === "server")
          .map(async (p) =>
            (await proxyMetrics(p.status?.podIP ?? ""))
              .split("\n")
              .filter((l) => l.startsWith("tcp_") || l.startsWith("request_total"))
              .join("\n"),
          ),
      );
      throw new Error(`${err.message}\n${texts.join("\n---\n")}`);
    });
    // Requests of the first seconds may fail while the servers' and clients' proxies are still
    // learning of each other (as in any capture mode); once every class was answered, none may.
    const figures = traffic.figures();
    const settledFigures = figures.find((f) => f.phase === "cni, settled");
    assertClean("cni, settled", traffic);
    assert.ok((settledFigures?.sent ?? 0) > 0, "requests sent once settled");
    const warmup = figures.find((f) => f.phase === "cni");
    const sent = `${settledFigures?.sent} requests once settled (${warmup?.sent} while warming up, ${warmup?.failed} of them failed)`;
    // The harness's own chained plugin did its work in the same namespaces: the API answers.
    const api = await cluster.kubectlAsync([
      "-n",
      LOCKED,
      "exec",
      clients[0]?.metadata?.name ?? "",
      "-c",
      "client",
      "--",
      "/usr/bin/node",
      "-e",
      'require("https").get({host:"10.0.0.1",port:443,path:"/version",rejectUnauthorized:false},(r)=>console.log(r.statusCode)).on("error",(e)=>console.log(e.code))',
    ]);
    assert.match(api.trim(), /^\d{3}$/, `the API through the harness's redirect: ${api}`);
    note(`restricted apps meshed: ${sent}, 0 failed once settled`);
  });

  it("switching back: the rollout returns the demo to trellis-init with zero failed requests, then the CNI folders are restored byte for byte", async () => {
    // Pods of a restricted namespace cannot run trellis-init: that namespace leaves the mesh first.
    await cluster.kubectlAsync(["delete", "namespace", LOCKED, RACE, "--wait=true", "--timeout=180s"]);
    demo?.phase("switch to InitContainer");
    setCaptureMode("InitContainer");
    const started = Date.now();
    await until("the rollout back to InitContainer complete", () => rolledTo(V0, "InitContainer"), 300_000);
    note(`demo rolled back to InitContainer in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await until("the plugin uninstalled and its DaemonSet deleted", async () => {
      const left = await cluster.kubectlAsync(["-n", "trellis-system", "get", "daemonsets", "-o", "name"]);
      return left.trim() === "";
    });
    demo?.phase("InitContainer again");
    assert.deepEqual(snapshot(folders.confDir), originalConf);
    assert.deepEqual(snapshot(folders.binDir), originalBin);
    note(
      `plugin removed ${((Date.now() - started) / 1000).toFixed(1)} s after the switch back; folders restored`,
    );
    await demo?.flush();
    for (const phase of ["switch to CNI", "CNI", "switch to InitContainer"]) assertClean(phase);
    await demo?.stop();
    process.stderr.write(`requests of the demo, by phase:\n${formatTable(demo?.figures() ?? [])}\n`);
    demo = undefined;
  });

  it("removing a Mesh in CNI mode restores the node's CNI configuration byte for byte", async () => {
    await cluster.kubectlAsync(["delete", "namespace", DEMO, "--wait=true", "--timeout=180s"]);
    setCaptureMode("CNI");
    await until("the plugin installed again", () => mesh().status?.capture?.mode === "CNI");
    const [file = ""] = [...originalConf.keys()];
    assert.notEqual(readFileSync(join(folders.confDir, file), "latin1"), originalConf.get(file));
    cluster.kubectl(["delete", "mesh", "default", "--wait=false"]);
    await until(
      "the Mesh to be removed",
      () => !cluster.kubectl(["get", "mesh", "-o", "name"]).includes("mesh"),
      240_000,
    );
    assert.deepEqual(snapshot(folders.confDir), originalConf);
    assert.deepEqual(snapshot(folders.binDir), originalBin);
    note("mesh removed; CNI configuration restored byte for byte");
  });
});
