// The real node of the local cluster: containerd + runc + the CNI bridge + a kubelet, beside the
// KWOK nodes, for the few tests that need real containers (sidecars, HTTP between pods, logs).
//
// Owns: starting containerd, CoreDNS and the kubelet (in the cluster's process group, so under
// PDEATHSIG), the pause image import, the API forwarder on the gateway address, and draining the
// node through containerd on stop. Does not own: configuration files
// (node-config.ts), the network (node-network.ts), DNS answers (cluster-dns.ts), images
// (node-images.ts), or removing leftovers (node-leftovers.ts).
import { execFile, execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { Server } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api } from "@kubernetes/client-node";
import { startClusterDns } from "./cluster-dns.ts";
import { type ClusterPki, issueClientCertificate } from "./cluster-pki.ts";
import {
  CLUSTER_DOMAIN,
  containerdSocket,
  nodeDir,
  REAL_NODE_LABEL,
  REAL_NODE_NAME,
  type RealNodeContext,
  writeContainerdConfig,
  writeKubeletConfig,
} from "./node-config.ts";
import { pauseImageArchive } from "./node-images.ts";
import { shimPidsOf } from "./node-leftovers.ts";
import { type NodeNetwork, startApiForwarder } from "./node-network.ts";
import type { ManagedProcess } from "./process-group.ts";

export {
  CLUSTER_DOMAIN,
  REAL_NODE_LABEL,
  REAL_NODE_NAME,
  REAL_NODE_TAINT,
  type RealNodeContext,
} from "./node-config.ts";
export {
  mountsUnder,
  removeOrphanedNodeNetworks,
  removeRealNodeLeftovers,
  shimPidsOf,
} from "./node-leftovers.ts";

const execFileAsync = promisify(execFile);

/**
 * kube-apiserver flags for a cluster with a real node: advertise the gateway address (pods reach
 * the API there, through the forwarder) and call the kubelet (logs, exec) with a client
 * certificate, checking the kubelet's serving certificate against the cluster CA.
 */
export function realNodeApiServerFlags(pki: ClusterPki, network: NodeNetwork): string[] {
  const client = issueClientCertificate(
    pki.dir,
    "apiserver-kubelet-client",
    "kube-apiserver-kubelet-client",
    ["system:masters"],
  );
  return [
    `--advertise-address=${network.gatewayIp}`,
    `--kubelet-client-certificate=${client.cert}`,
    `--kubelet-client-key=${client.key}`,
    `--kubelet-certificate-authority=${pki.caCert}`,
    "--kubelet-preferred-address-types=InternalIP",
    // No kube-proxy, and the host has no route to ClusterIPs: the API server calls webhook and
    // aggregated-API Services at their endpoints' pod IPs, which the host reaches on the bridge.
    "--enable-aggregator-routing=true",
  ];
}
export class RealNode {
  readonly name = REAL_NODE_NAME;
  readonly gatewayIp: string;
  readonly podCidr: string;
  /** The Linux bridge of the node's pods (trellis<N>). */
  readonly bridge: string;
  private drained = false;

  private constructor(
    private readonly ctx: RealNodeContext,
    private readonly socket: string,
    private readonly kubelet: ManagedProcess,
    private readonly dns: ManagedProcess,
    private readonly forwarder: Server,
    /** Milliseconds from the start of containerd to the node's Ready condition. */
    readonly readyAfterMs: number,
  ) {
    this.bridge = ctx.network.bridge;
    this.gatewayIp = ctx.network.gatewayIp;
    this.podCidr = ctx.network.podCidr;
  }

  /** Starts containerd, imports the pause image, starts the kubelet and waits for the node to be Ready. */
  static async start(ctx: RealNodeContext): Promise<RealNode> {
    const started = Date.now();
    const dir = nodeDir(ctx.clusterDir);
    const socket = containerdSocket(ctx.clusterDir);
    const forwarder = await startApiForwarder(ctx.network.gatewayIp, ctx.apiServerPort, ctx.apiServerPort);
    try {
      const dns = await startClusterDns({
        group: ctx.group,
        coredns: ctx.coredns,
        dir,
        address: ctx.network.gatewayIp,
        kubeconfig: ctx.kubeconfigPath,
        clusterDomain: CLUSTER_DOMAIN,
        readyPort: ctx.dnsReadyPort,
      });
      const kubelet = await startProcesses(ctx, dir, socket);
      return new RealNode(ctx, socket, kubelet, dns, forwarder, Date.now() - started);
    } catch (err) {
      // The processes are the cluster group's to stop; the in-process forwarder is ours.
      forwarder.close();
      throw err;
    }
  }

  /** Imports an OCI image archive into the node's containerd (namespace k8s.io, where the CRI looks). */
  async importImage(archive: string): Promise<void> {
    await ctr(this.socket, ["images", "import", archive]);
  }

  /** PIDs of this node's containerd shims (each the parent of a pod's containers). */
  shimPids(): number[] {
    return shimPidsOf(this.ctx.clusterDir);
  }

  /**
   * Sends `signal` to a container's main process through containerd (`containerID` as the pod
   * status shows it, `containerd://<id>`): SIGSTOP and SIGCONT freeze and thaw it in a test.
   */
  async signalContainer(containerID: string, signal: "SIGSTOP" | "SIGCONT" | "SIGKILL"): Promise<void> {
    await ctr(this.socket, ["tasks", "kill", "-s", signal, containerID.replace(/^containerd:\/\//, "")]);
  }

  /** What a container wrote (stdout and stderr, every restart, CRI prefixes stripped). */
  containerLog(namespace: string, pod: string, container: string): string {
    const root = join(nodeDir(this.ctx.clusterDir), "kubelet", "pod-logs");
    const out: string[] = [];
    for (const podDir of existsSync(root) ? readdirSync(root) : []) {
      if (!podDir.startsWith(`${namespace}_${pod}_`)) continue;
      const dir = join(root, podDir, container);
      if (!existsSync(dir)) continue;
      const files = readdirSync(dir).sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
      for (const f of files) {
        for (const line of readFileSync(join(dir, f), "utf8").split("\n")) {
          if (line) out.push(line.replace(/^\S+ (stdout|stderr) [FP] /, ""));
        }
      }
    }
    return out.join("\n");
  }

  /** The network namespace (a path) of the pod with this IP, for `ip -n`/`nsenter` in tests. */
  podNetns(podIp: string): string | undefined {
    const netnsDir = join(
      nodeDir(this.ctx.clusterDir),
      "containerd",
      "state",
      "io.containerd.grpc.v1.cri",
      "netns",
    );
    for (const name of existsSync(netnsDir) ? readdirSync(netnsDir) : []) {
      const path = join(netnsDir, name);
      try {
        const out = execFileSync("nsenter", [`--net=${path}`, "ip", "-4", "-o", "addr", "show"], {
          encoding: "utf8",
        });
        if (out.includes(` ${podIp}/`)) return path;
      } catch {
        // a namespace being torn down
      }
    }
    return undefined;
  }

  /** Stops the kubelet, then kills and deletes every task and container through containerd. */
  async drain(): Promise<void> {
    if (this.drained) return;
    this.drained = true;
    await this.ctx.group.stopProcess(this.kubelet);
    try {
      const tasks = (await ctr(this.socket, ["tasks", "ls", "-q"])).split("\n").filter(Boolean);
      await Promise.all(
        tasks.map((id) => ctr(this.socket, ["tasks", "kill", "-s", "SIGKILL", id]).catch(() => "")),
      );
      if (tasks.length > 0) await ctr(this.socket, ["tasks", "delete", "-f", ...tasks]).catch(() => "");
      const containers = (await ctr(this.socket, ["containers", "ls", "-q"])).split("\n").filter(Boolean);
      if (containers.length > 0)
        await ctr(this.socket, ["containers", "delete", ...containers]).catch(() => "");
    } catch (err) {
      this.ctx.log(
        `real node drain through containerd failed, falling back to kill: ${(err as Error).message}`,
      );
    }
    this.forwarder.close();
    await this.ctx.group.stopProcess(this.dns);
  }
}

/** containerd (waited for), the pause image import, then the kubelet, waited for until the node is Ready. */
async function startProcesses(ctx: RealNodeContext, dir: string, socket: string): Promise<ManagedProcess> {
  const containerdConfig = writeContainerdConfig(dir, ctx);
  const containerd = ctx.group.start({
    name: "containerd",
    command: "/usr/bin/containerd",
    args: ["--config", containerdConfig],
    logFile: join(ctx.clusterDir, "containerd.log"),
  });
  await waitUntil(async () => {
    if (containerd.exitCode() !== undefined) throw new Error(`containerd exited (${containerd.exitCode()})`);
    await ctr(socket, ["version"]);
    return true;
  }, "containerd");
  await ctr(socket, ["images", "import", pauseImageArchive()]);
  const kubeletConfig = writeKubeletConfig(dir, ctx, socket);
  const kubelet = ctx.group.start({
    name: "kubelet",
    command: ctx.kubelet,
    args: [
      `--config=${kubeletConfig}`,
      `--kubeconfig=${join(dir, "kubelet", "kubeconfig")}`,
      `--hostname-override=${REAL_NODE_NAME}`,
      `--node-ip=${ctx.network.gatewayIp}`,
      `--node-labels=${REAL_NODE_LABEL}=true`,
      `--root-dir=${join(dir, "kubelet", "root")}`,
      `--cert-dir=${join(dir, "kubelet", "certs")}`,
      "--v=1",
    ],
    logFile: join(ctx.clusterDir, "kubelet.log"),
  });
  const api = ctx.kubeConfig.makeApiClient(CoreV1Api);
  await waitUntil(
    async () => {
      if (kubelet.exitCode() !== undefined) throw new Error(`kubelet exited (${kubelet.exitCode()})`);
      const node = await api.readNode({ name: REAL_NODE_NAME });
      return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
    },
    "the real node to be Ready",
    120_000,
  );
  return kubelet;
}

async function ctr(socket: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync("ctr", ["-a", socket, "-n", "k8s.io", ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof Error && err.message.includes("exited")) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`);
}
