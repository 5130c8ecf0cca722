// The local cluster's real node runs real containers: it goes Ready with containerd, runs a pod
// with a native sidecar from an image made on this machine, answers HTTP on the pod IP, serves
// `kubectl logs`/`exec`, answers DNS as a real cluster does (CoreDNS: a Service name → its
// ClusterIP, a headless Service → pod IPs), refuses a ClusterIP inside an unmeshed pod so that no
// packet to it leaves the pod (there is no kube-proxy), lets a pod call the API server through
// in-cluster config, gives pods no default route, and leaves nothing behind on stop — nor after
// its owner is SIGKILLed, once the next cluster starts.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { Resolver } from "node:dns/promises";
import { existsSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { clusterBinaries, repoRoot } from "./binaries.ts";
import {
  KUBERNETES_SERVICE_IP,
  LocalCluster,
  REAL_NODE_LABEL,
  REAL_NODE_NAME,
  SERVICE_CIDR,
  waitFor,
} from "./local-cluster.ts";
import { nodeRuntimeImageArchive, PAUSE_IMAGE } from "./node-images.ts";
import { mountsUnder, shimPidsOf } from "./node-leftovers.ts";
import { cidrsOverlap } from "./node-network.ts";
import { isRunning } from "./processes.ts";

const IMAGE = "localhost/trellis-real-node-test:1";
const testdata = join(repoRoot, "test/cluster/testdata");

const onRealNode = `
  nodeSelector: { ${REAL_NODE_LABEL}: "true" }
  tolerations: [{ key: ${REAL_NODE_LABEL}, operator: Exists, effect: NoSchedule }]`;

const webPod = `
apiVersion: v1
kind: Pod
metadata: { name: web, namespace: default, labels: { app: web } }
spec:${onRealNode}
  initContainers:
  - name: sidecar
    image: ${IMAGE}
    imagePullPolicy: Never
    restartPolicy: Always
    args: ["/app/pod-server.js", "9090", "sidecar"]
  containers:
  - name: app
    image: ${IMAGE}
    imagePullPolicy: Never
    args: ["/app/pod-server.js", "8080", "app"]
    readinessProbe: { httpGet: { port: 8080 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  selector: { app: web }
  ports: [{ port: 8080, targetPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web-headless, namespace: default }
spec:
  clusterIP: None
  selector: { app: web }
  ports: [{ port: 8080, targetPort: 8080 }]
`;

const checkPod = `
apiVersion: v1
kind: Pod
metadata: { name: check, namespace: default }
spec:${onRealNode}
  containers:
  - name: check
    image: ${IMAGE}
    imagePullPolicy: Never
    args: ["/app/in-cluster-check.js", "web.default.svc.cluster.local", "web-headless", "8080"]
`;

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    })
      .on("error", reject)
      .on("timeout", function (this: { destroy(e: Error): void }) {
        this.destroy(new Error(`timeout: ${url}`));
      });
  });
}

function linkExists(name: string): boolean {
  try {
    execFileSync("ip", ["link", "show", "dev", name], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function containerIds(pod: V1Pod): string[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
    .map((s) => s.containerID?.replace("containerd://", "") ?? "")
    .filter(Boolean);
}

describe("local cluster: real node", { timeout: 900_000 }, () => {
  let cluster: LocalCluster;
  let core: CoreV1Api;

  before(async () => {
    const archive = nodeRuntimeImageArchive(IMAGE, {
      "/app/pod-server.js": readFileSync(join(testdata, "pod-server.js"), "utf8"),
      "/app/in-cluster-check.js": readFileSync(join(testdata, "in-cluster-check.js"), "utf8"),
    });
    cluster = await LocalCluster.start({ nodes: 1, realNode: true });
    process.stderr.write(
      `real node Ready ${(cluster.realNode.readyAfterMs / 1000).toFixed(1)} s after cluster ready\n`,
    );
    await cluster.realNode.importImage(archive);
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  });
  after(async () => {
    await cluster?.stop();
  });

  async function runningPod(name: string): Promise<V1Pod> {
    let pod: V1Pod | undefined;
    await waitFor(
      async () => {
        pod = await core.readNamespacedPod({ name, namespace: "default" });
        return pod.status?.phase === "Running" && Boolean(pod.status.podIP);
      },
      120_000,
      `pod ${name} Running`,
      500,
    ).catch((err) => {
      throw new Error(
        `${err.message}\n${cluster.kubectl(["describe", "pod", name])}\n${cluster.logTail("kubelet")}`,
      );
    });
    return pod as V1Pod;
  }

  it("registers a Ready node with the containerd runtime, labelled and tainted, beside the KWOK node", async () => {
    const node = await core.readNode({ name: REAL_NODE_NAME });
    assert.match(node.status?.nodeInfo?.containerRuntimeVersion ?? "", /^containerd:\/\/1\./);
    assert.equal(node.metadata?.labels?.[REAL_NODE_LABEL], "true");
    assert.deepEqual(
      node.spec?.taints?.map((t) => `${t.key}=${t.value}:${t.effect}`),
      [`${REAL_NODE_LABEL}=true:NoSchedule`],
    );
    const internal = node.status?.addresses?.find((a) => a.type === "InternalIP")?.address;
    assert.equal(internal, cluster.realNode.gatewayIp);
    assert.match(cluster.kubectl(["get", "nodes", "--no-headers"]), /kwok-node-0\s+Ready/);
  });

  it("runs a pod with a native sidecar and a main container, both Running, and answers HTTP on the pod IP", async () => {
    cluster.kubectl(["apply", "-f", "-"], webPod);
    const pod = await runningPod("web");
    await waitFor(
      async () => {
        const p = await core.readNamespacedPod({ name: "web", namespace: "default" });
        const all = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])];
        const ready = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
        return all.length === 2 && all.every((s) => s.state?.running) && Boolean(ready);
      },
      60_000,
      "sidecar and app Running, the pod Ready (the app's readiness probe)",
    );
    assert.equal(pod.spec?.nodeName, REAL_NODE_NAME);
    const ip = pod.status?.podIP ?? "";
    assert.ok(
      ip.startsWith(cluster.realNode.podCidr.replace(/0\/24$/, "")),
      `${ip} in ${cluster.realNode.podCidr}`,
    );
    assert.equal(await httpGet(`http://${ip}:8080/`), "hello from app on web\n");
    let sidecar = "";
    await waitFor(
      async () => {
        sidecar = await httpGet(`http://${ip}:9090/`);
        return true;
      },
      30_000,
      "the sidecar to listen",
    );
    assert.equal(sidecar, "hello from sidecar on web\n");
  });

  it("serves kubectl logs and kubectl exec through the kubelet", () => {
    assert.match(cluster.kubectl(["logs", "web", "-c", "app"]), /app listening on 8080/);
    assert.match(cluster.kubectl(["logs", "web", "-c", "sidecar"]), /sidecar listening on 9090/);
    const resolvConf = cluster.kubectl([
      "exec",
      "web",
      "-c",
      "app",
      "--",
      "/usr/bin/node",
      "-p",
      'require("fs").readFileSync("/etc/resolv.conf", "utf8")',
    ]);
    assert.match(resolvConf, new RegExp(`nameserver ${cluster.realNode.gatewayIp.replaceAll(".", "\\.")}`));
    assert.match(resolvConf, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
  });

  it("lets a pod resolve Services through the cluster DNS, reach a headless one, and call the API server through in-cluster config", async () => {
    const web = await core.readNamespacedPod({ name: "web", namespace: "default" });
    const clusterIp = (await core.readNamespacedService({ name: "web", namespace: "default" })).spec
      ?.clusterIP;
    cluster.kubectl(["apply", "-f", "-"], checkPod);
    await runningPod("check");
    let line = "";
    await waitFor(
      async () => {
        line =
          cluster
            .kubectl(["logs", "check"])
            .split("\n")
            .find((l) => l.startsWith("RESULT ")) ?? "";
        return line !== "";
      },
      60_000,
      "the check pod's RESULT line",
      500,
    );
    const result = JSON.parse(line.slice("RESULT ".length));
    assert.deepEqual(result, {
      resolved: [clusterIp],
      // No kube-proxy, and this pod is not meshed: its own network namespace refuses the ClusterIP.
      clusterIpHttp: "error: ECONNREFUSED",
      resolvedHeadless: [web.status?.podIP],
      http: "hello from app on web",
      missing: "ENOTFOUND",
      version: JSON.parse(cluster.kubectl(["version", "-o", "json"])).serverVersion.gitVersion,
      user: "system:serviceaccount:default:default",
    });
  });

  it("answers DNS as a cluster does: ClusterIPs, headless Services' pods, NXDOMAIN outside the cluster", async () => {
    const web = await core.readNamespacedPod({ name: "web", namespace: "default" });
    const clusterIp = (await core.readNamespacedService({ name: "web", namespace: "default" })).spec
      ?.clusterIP;
    assert.ok(clusterIp && cidrsOverlap(`${clusterIp}/32`, SERVICE_CIDR), `${clusterIp} in ${SERVICE_CIDR}`);
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([cluster.realNode.gatewayIp]);
    assert.deepEqual(await resolver.resolve4("web.default.svc.cluster.local"), [clusterIp]);
    assert.deepEqual(await resolver.resolve4("web-headless.default.svc.cluster.local"), [web.status?.podIP]);
    assert.deepEqual(await resolver.resolve4("kubernetes.default.svc.cluster.local"), [
      KUBERNETES_SERVICE_IP,
    ]);
    for (const name of ["nope.default.svc.cluster.local", "web.other.svc.cluster.local", "example.com"]) {
      await assert.rejects(resolver.resolve4(name), { code: "ENOTFOUND" }, name);
    }
  });

  it("rejects a connection to a ClusterIP inside an unmeshed pod: no packet to it leaves the pod", async () => {
    const pod = await core.readNamespacedPod({ name: "check", namespace: "default" });
    const netns = cluster.realNode.podNetns(pod.status?.podIP ?? "") as string;
    const clusterIp = (await core.readNamespacedService({ name: "web", namespace: "default" })).spec
      ?.clusterIP;
    const inPod = (command: string, args: string[]) =>
      execFileSync("nsenter", [`--net=${netns}`, command, ...args], { encoding: "utf8" });
    const rejected = () =>
      Number(
        inPod("iptables", ["-w", "-L", "OUTPUT", "-v", "-x", "-n"])
          .split("\n")
          .find((l) => l.includes("REJECT") && l.includes(SERVICE_CIDR))
          ?.trim()
          .split(/\s+/)[0] ?? Number.NaN,
      );
    const sent = () => Number(inPod("cat", ["/sys/class/net/eth0/statistics/tx_packets"]).trim());
    const dial = `const s = require("net").connect(8080, "${clusterIp}"); s.on("connect", () => console.log("connected")); s.on("error", (e) => console.log(e.code)); s.setTimeout(3000, () => { console.log("timeout"); process.exit(); });`;
    // Up to three tries, each: refused at once, counted by the pod's REJECT rule, and (at least
    // once, since a stray IPv6 or ARP packet may go out meanwhile) nothing sent on the interface.
    const trials: Array<{ result: string; rejected: number; sent: number }> = [];
    for (let i = 0; i < 3 && !trials.some((t) => t.sent === 0); i++) {
      const earlier = { rejected: rejected(), sent: sent() };
      const result = inPod(process.execPath, ["-e", dial]).trim();
      trials.push({ result, rejected: rejected() - earlier.rejected, sent: sent() - earlier.sent });
    }
    const counts = JSON.stringify(trials);
    assert.ok(
      trials.every((t) => t.result === "ECONNREFUSED" && t.rejected >= 1),
      `refused by the pod's REJECT rule: ${counts}`,
    );
    assert.ok(
      trials.some((t) => t.sent === 0),
      `no packet left the pod's interface: ${counts}`,
    );
    assert.throws(
      () => execFileSync("ip", ["route", "get", clusterIp as string], { stdio: "pipe" }),
      /No route to host|unreachable/i,
      "and the host has no route for it either",
    );
  });

  it("gives pods no default route, only the Service range (refused inside the pod), and makes it unreachable on the host", async () => {
    const pod = await core.readNamespacedPod({ name: "check", namespace: "default" });
    const netns = cluster.realNode.podNetns(pod.status?.podIP ?? "");
    assert.ok(netns, "the pod's network namespace");
    const routes = execFileSync("nsenter", [`--net=${netns}`, "ip", "-4", "route"], { encoding: "utf8" });
    assert.doesNotMatch(routes, /default/);
    assert.deepEqual(
      routes
        .trim()
        .split("\n")
        .map((r) => r.split(" ")[0])
        .sort(),
      [cluster.realNode.podCidr, SERVICE_CIDR].sort(),
    );
    const v6 = execFileSync("nsenter", [`--net=${netns}`, "ip", "-6", "route"], { encoding: "utf8" });
    assert.doesNotMatch(v6, /default/);
    assert.throws(
      () => execFileSync("ip", ["route", "get", "10.0.0.77"], { stdio: "pipe" }),
      /No route to host|unreachable/i,
    );
    assert.match(execFileSync("ip", ["route", "show", SERVICE_CIDR], { encoding: "utf8" }), /unreachable/);
  });

  it("stop removes containers, shims, mounts, network namespaces, cgroups, the bridge and the route", async () => {
    const pods = await core.listNamespacedPod({ namespace: "default" });
    const ids = pods.items.flatMap(containerIds);
    const shims = cluster.realNode.shimPids();
    const pids = cluster.pids();
    const { bridge } = cluster.realNode;
    assert.ok(ids.length >= 3 && shims.length >= 2, `containers ${ids.length}, shims ${shims.length}`);
    assert.ok(
      mountsUnder(cluster.dir).some((m) => m.includes("/netns/")),
      "pods have netns mounts",
    );
    await cluster.stop();
    assert.deepEqual([...shims, ...pids].filter(isRunning), []);
    assert.deepEqual(mountsUnder(cluster.dir), []);
    assert.equal(existsSync(cluster.dir), false);
    assert.equal(linkExists(bridge), false, `bridge ${bridge} removed`);
    assert.doesNotMatch(
      execFileSync("ip", ["route", "show", SERVICE_CIDR], { encoding: "utf8" }),
      new RegExp(`metric ${4000 + Number(bridge.replace("trellis", ""))}\\b`),
    );
    for (const id of ids)
      assert.equal(existsSync(`/sys/fs/cgroup/memory/k8s.io/${id}`), false, `cgroup ${id}`);
  });
});

describe("local cluster: real node after a SIGKILLed owner", { timeout: 600_000 }, () => {
  it("the next start removes the containers, mounts, network namespaces and bridge the dead owner left", async () => {
    const owner = spawn(process.execPath, ["--import", "tsx", "test/cluster/cluster-cli.ts"], {
      cwd: repoRoot,
      env: { ...process.env, NODES: "0", REAL_NODE: "1" },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: owner.stdout }).once("line", resolve);
      owner.once("exit", (code) => reject(new Error(`cluster owner exited early (${code})`)));
    });
    const { dir, kubeconfig, bridge, pids } = JSON.parse(line) as {
      dir: string;
      kubeconfig: string;
      bridge: string;
      pids: number[];
    };
    const kubectl = (args: string[], input?: string) =>
      execFileSync(clusterBinaries().kubectl, args, {
        env: { ...process.env, KUBECONFIG: kubeconfig },
        input,
        encoding: "utf8",
      });
    // A pod of the pause image (already in the node's containerd): a shim, a container, mounts.
    kubectl(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Pod
metadata: { name: idle, namespace: default }
spec:${onRealNode}
  containers: [{ name: idle, image: ${PAUSE_IMAGE}, imagePullPolicy: Never }]
`,
    );
    await waitFor(
      async () => kubectl(["get", "pod", "idle", "-o", "jsonpath={.status.phase}"]) === "Running",
      120_000,
      "pod idle Running",
      500,
    );
    const shims = shimPidsOf(dir);
    assert.ok(shims.length >= 1, "the pod has a shim");
    owner.kill("SIGKILL");
    await waitFor(
      async () => pids.every((p) => !isRunning(p)),
      30_000,
      "the owner's processes to die (PDEATHSIG)",
    );
    // Shims outlive containerd by design; the next start must find and remove them.
    const next = await LocalCluster.start({ nodes: 0, controllers: false });
    try {
      assert.deepEqual(shims.filter(isRunning), []);
      assert.deepEqual(mountsUnder(dir), []);
      assert.equal(existsSync(dir), false);
      assert.equal(linkExists(bridge), false, `bridge ${bridge} removed`);
    } finally {
      await next.stop();
    }
  });
});
