// The real node of the local cluster: containerd + runc + the CNI bridge + a kubelet, beside the
// KWOK nodes, for the few tests that need real containers (sidecars, HTTP between pods, logs).
//
// Owns: containerd's and the kubelet's configuration, processes (in the cluster's process group,
// so under PDEATHSIG), the node's certificates, the pause image import, the API forwarder and DNS
// server on the gateway address, and removing every trace on stop or after a SIGKILLed owner:
// containers and their shims, mounts and network namespaces under the cluster dir, the bridge and
// route, and the kubelet's /var/log/containers links. See HARNESS.md for the sandbox's limits
// (no RLIMIT_NOFILE in specs, no negative oom_score_adj) that the configuration works around.
// Does not own: the network layout (node-network.ts), DNS answers (cluster-dns.ts), images
// (node-images.ts).
import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import type { Server } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { type ClusterDns, startClusterDns } from "./cluster-dns.ts";
import {
  type ClusterPki,
  issueClientCertificate,
  issueServingCertificate,
  writeKubeconfig,
} from "./cluster-pki.ts";
import { PAUSE_IMAGE, pauseImageArchive } from "./node-images.ts";
import {
  harnessBridges,
  type NodeNetwork,
  removeNodeNetwork,
  startApiForwarder,
  writeCniConfig,
} from "./node-network.ts";
import type { ManagedProcess, ProcessGroup } from "./process-group.ts";

const execFileAsync = promisify(execFile);

export const REAL_NODE_NAME = "trellis-real-node";
export const REAL_NODE_LABEL = "trellis.dev/real-node";
/** Only pods that tolerate this taint run on the real node; everything at scale stays on KWOK. */
export const REAL_NODE_TAINT = { key: REAL_NODE_LABEL, value: "true", effect: "NoSchedule" } as const;
export const CLUSTER_DOMAIN = "cluster.local";

export interface RealNodeContext {
  clusterDir: string;
  pki: ClusterPki;
  group: ProcessGroup;
  kubeConfig: KubeConfig;
  server: string;
  apiServerPort: number;
  /** The kubelet's HTTPS port on the gateway address (logs, exec). */
  kubeletPort: number;
  kubelet: string;
  network: NodeNetwork;
  serviceCidr: string;
  /** The `kubernetes` Service's ClusterIP, redirected inside each pod to the forwarder. */
  kubernetesServiceIp: string;
  log: (msg: string) => void;
}

/** The API server's client certificate for the kubelet (logs, exec), made before the API server starts. */
export function issueKubeletClientCertificate(pki: ClusterPki): { cert: string; key: string } {
  return issueClientCertificate(pki.dir, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", [
    "system:masters",
  ]);
}

function nodeDir(clusterDir: string): string {
  return join(clusterDir, "node");
}

function containerdSocket(clusterDir: string): string {
  return join(nodeDir(clusterDir), "containerd", "containerd.sock");
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
    private readonly dns: ClusterDns,
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
    const dns = await startClusterDns(ctx.kubeConfig, ctx.network.gatewayIp, CLUSTER_DOMAIN);
    const containerdConfig = writeContainerdConfig(dir, ctx);
    const containerd = ctx.group.start({
      name: "containerd",
      command: "/usr/bin/containerd",
      args: ["--config", containerdConfig],
      logFile: join(ctx.clusterDir, "containerd.log"),
    });
    await waitUntil(async () => {
      if (containerd.exitCode() !== undefined)
        throw new Error(`containerd exited (${containerd.exitCode()})`);
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
    return new RealNode(ctx, socket, kubelet, dns, forwarder, Date.now() - started);
  }

  /** Imports an OCI image archive into the node's containerd (namespace k8s.io, where the CRI looks). */
  async importImage(archive: string): Promise<void> {
    await ctr(this.socket, ["images", "import", archive]);
  }

  /** PIDs of this node's containerd shims (each the parent of a pod's containers). */
  shimPids(): number[] {
    return shimPidsOf(this.ctx.clusterDir);
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
    await this.dns.stop();
  }
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

/** containerd's config: everything under the node dir, CRI with the local pause image and our CNI. */
function writeContainerdConfig(dir: string, ctx: RealNodeContext): string {
  const base = join(dir, "containerd");
  mkdirSync(base, { recursive: true });
  // The sandbox refuses RLIMIT_NOFILE: the default spec without process.rlimits.
  const spec = JSON.parse(execFileSync("ctr", ["oci", "spec"], { encoding: "utf8" }));
  delete spec.process.rlimits;
  writeFileSync(join(base, "base-spec.json"), JSON.stringify(spec));
  // The sandbox refuses a negative oom_score_adj (runc then fails with "can't get final child's
  // PID from pipe"): rewrite it to 0 in the bundle before runc reads it.
  const wrapper = join(base, "runc-wrapper");
  writeFileSync(
    wrapper,
    `#!/bin/sh
bundle=""
prev=""
for arg in "$@"; do
  case "$prev" in --bundle|-b) bundle="$arg" ;; esac
  case "$arg" in --bundle=*) bundle="\${arg#--bundle=}" ;; esac
  prev="$arg"
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec /usr/sbin/runc "$@"
`,
  );
  chmodSync(wrapper, 0o755);
  const cni = writeCniConfig(join(dir, "cni"), ctx.network, {
    clusterIp: ctx.kubernetesServiceIp,
    serviceCidr: ctx.serviceCidr,
    port: ctx.apiServerPort,
  });
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const config = `version = 2
root = "${join(base, "root")}"
state = "${join(base, "state")}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${containerdSocket(ctx.clusterDir)}"

[ttrpc]
  address = "${containerdSocket(ctx.clusterDir)}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(base, "opt")}"

[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "${join(base, "base-spec.json")}"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "${wrapper}"

[${cri}.cni]
  bin_dir = "${cni.binDir}"
  conf_dir = "${cni.confDir}"
  max_conf_num = 1
`;
  const path = join(base, "config.toml");
  writeFileSync(path, config);
  return path;
}

/** The kubelet's certificates, kubeconfig and KubeletConfiguration (HARNESS.md lists why each field). */
function writeKubeletConfig(dir: string, ctx: RealNodeContext, socket: string): string {
  const base = join(dir, "kubelet");
  mkdirSync(join(base, "pod-logs"), { recursive: true });
  const client = issueClientCertificate(ctx.pki.dir, "kubelet-client", `system:node:${REAL_NODE_NAME}`, [
    "system:nodes",
  ]);
  const serving = issueServingCertificate(ctx.pki.dir, "kubelet-serving", {
    dnsNames: [REAL_NODE_NAME],
    ipAddresses: [ctx.network.gatewayIp],
  });
  writeKubeconfig(join(base, "kubeconfig"), ctx.server, ctx.pki.caCert, {
    name: `system:node:${REAL_NODE_NAME}`,
    certPath: client.cert,
    keyPath: client.key,
  });
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    localStorageCapacityIsolation: false,
    containerRuntimeEndpoint: `unix://${socket}`,
    imageServiceEndpoint: `unix://${socket}`,
    podCIDR: ctx.network.podCidr,
    address: ctx.network.gatewayIp,
    port: ctx.kubeletPort,
    healthzPort: 0,
    readOnlyPort: 0,
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: ctx.pki.caCert },
    },
    authorization: { mode: "AlwaysAllow" },
    staticPodPath: "",
    resolvConf: "",
    clusterDNS: [ctx.network.gatewayIp],
    clusterDomain: CLUSTER_DOMAIN,
    podLogsDir: join(base, "pod-logs"),
    volumePluginDir: join(base, "volume-plugins"),
    registerWithTaints: [REAL_NODE_TAINT],
    makeIPTablesUtilChains: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    serializeImagePulls: false,
    maxPods: 30,
  };
  const path = join(base, "config.yaml");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function processTable(): ProcessEntry[] {
  const table: ProcessEntry[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      table.push({ pid: Number(entry), ppid, args });
    } catch {
      // exited while we looked
    }
  }
  return table;
}

type ProcessEntry = { pid: number; ppid: number; args: string[] };

/** PIDs of the containerd shims of the cluster in `clusterDir`, found by their -address. */
export function shimPidsOf(clusterDir: string): number[] {
  return shimsOf(clusterDir, processTable()).map((p) => p.pid);
}

function shimsOf(clusterDir: string, table: ProcessEntry[]): ProcessEntry[] {
  const socket = containerdSocket(clusterDir);
  return table.filter((p) => {
    const i = p.args.indexOf("-address");
    return i >= 0 && p.args[i + 1] === socket;
  });
}

/**
 * Kills the containerd shims of this cluster (found by their -address, under the cluster dir)
 * and every process below them (the containers), and removes the shims' sockets.
 */
function killShims(clusterDir: string): number {
  const socket = containerdSocket(clusterDir);
  const table = processTable();
  const shims = shimsOf(clusterDir, table);
  const victims = new Set<number>();
  const addTree = (pid: number) => {
    victims.add(pid);
    for (const child of table.filter((p) => p.ppid === pid)) addTree(child.pid);
  };
  for (const shim of shims) addTree(shim.pid);
  for (const pid of victims) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  for (let i = 0; i < 50 && [...victims].some((pid) => existsSync(`/proc/${pid}`)); i++) sleepSync(100);
  for (const shim of shims) {
    // containerd 1.6 names a shim's socket sha256(<address>/<namespace>/<id>) under /run/containerd/s.
    const ns = shim.args[shim.args.indexOf("-namespace") + 1];
    const id = shim.args[shim.args.indexOf("-id") + 1];
    const hash = createHash("sha256").update(`${socket}/${ns}/${id}`).digest("hex");
    rmSync(`/run/containerd/s/${hash}`, { force: true });
  }
  return shims.length;
}

/** IDs of the containers (sandboxes included) containerd has run for this cluster. */
function containerIds(clusterDir: string): string[] {
  const tasks = join(nodeDir(clusterDir), "containerd", "state", "io.containerd.runtime.v2.task", "k8s.io");
  return existsSync(tasks) ? readdirSync(tasks).filter((id) => /^[0-9a-f]{64}$/.test(id)) : [];
}

/** runc's cgroups (cgroupfs, /sys/fs/cgroup/<controller>/k8s.io/<id>) of containers that did not get a `runc delete`. */
function removeCgroups(ids: string[]): void {
  if (ids.length === 0 || !existsSync("/sys/fs/cgroup")) return;
  for (const controller of readdirSync("/sys/fs/cgroup")) {
    for (const id of ids) {
      try {
        rmdirSync(join("/sys/fs/cgroup", controller, "k8s.io", id));
      } catch {
        // not there, or already removed by runc
      }
    }
  }
}

/** Mount points under `dir` (rootfs overlays, shm, netns files, kubelet volumes), deepest first. */
export function mountsUnder(dir: string): string[] {
  const mounts: string[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const point = line
      .split(" ")[4]
      ?.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(Number.parseInt(o, 8)));
    if (point?.startsWith(`${dir}/`)) mounts.push(point);
  }
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

/**
 * Removes everything a real node of the cluster in `clusterDir` leaves outside its processes;
 * synchronous, so that it also runs from exit paths. Safe to run when nothing is left.
 */
export function removeRealNodeLeftovers(clusterDir: string, serviceCidr: string): void {
  const containers = containerIds(clusterDir);
  killShims(clusterDir);
  removeCgroups(containers);
  const mounts = mountsUnder(clusterDir);
  if (mounts.length > 0) {
    try {
      execFileSync("umount", ["-l", ...mounts], { stdio: "ignore" });
    } catch {
      // some were already gone with their parent
    }
  }
  for (const { bridge, dir } of harnessBridges()) {
    if (dir === clusterDir) removeNodeNetwork(bridge, serviceCidr);
  }
  const links = "/var/log/containers";
  for (const name of existsSync(links) ? readdirSync(links) : []) {
    try {
      if (readlinkSync(join(links, name)).startsWith(`${clusterDir}/`))
        rmSync(join(links, name), { force: true });
    } catch {
      // not a link
    }
  }
}

/** Bridges (and routes) of harness owners that died before they could remove them. */
export function removeOrphanedNodeNetworks(serviceCidr: string): void {
  for (const { bridge, dir, ownerAlive } of harnessBridges()) {
    if (ownerAlive) continue;
    removeRealNodeLeftovers(dir, serviceCidr);
    removeNodeNetwork(bridge, serviceCidr);
  }
}
