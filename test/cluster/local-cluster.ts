// The embedded local cluster: a real etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and KWOK (fake nodes that run pods through KWOK's stages) on loopback.
//
// Used by tests, benchmarks and the run command. Owns the processes, their certificates,
// ports, kubeconfig and temporary data, and tears all of it down (by PID) on stop, on
// SIGINT/SIGTERM, and — through PDEATHSIG — even when the owning process is killed.
// Does not own: anything installed into the cluster (CRDs, the operator, workloads).
import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { CoreV1Api, KubeConfig, type V1Node } from "@kubernetes/client-node";
import { type ClusterBinaries, clusterBinaries, corednsBinary, kubeletBinary, repoRoot } from "./binaries.ts";
import { type ClusterPki, createClusterPki, writeKubeconfig } from "./cluster-pki.ts";
import { freePort } from "./free-port.ts";
import { createNodeNetwork, type NodeNetwork } from "./node-network.ts";
import { type ManagedProcess, ProcessGroup } from "./process-group.ts";
import { isRunning } from "./processes.ts";
import {
  RealNode,
  realNodeApiServerFlags,
  removeOrphanedNodeNetworks,
  removeRealNodeLeftovers,
} from "./real-node.ts";

export { CLUSTER_DOMAIN, REAL_NODE_LABEL, REAL_NODE_NAME, REAL_NODE_TAINT, RealNode } from "./real-node.ts";

const execFileAsync = promisify(execFile);

export interface LocalClusterOptions {
  /** Number of KWOK fake nodes (default 3). 0 starts no kwok process. */
  nodes?: number;
  /** Start kube-controller-manager and kube-scheduler (default true). */
  controllers?: boolean;
  /** Extra kube-apiserver flags. */
  apiServerArgs?: string[];
  /** Client QPS for the scheduler and controller-manager (default 200; raise for 10k-pod runs). */
  clientQps?: number;
  /** Print progress lines to stderr. */
  verbose?: boolean;
  /**
   * Also start a real node (containerd, runc, CNI bridge, kubelet; see real-node.ts), labelled
   * REAL_NODE_LABEL=true and tainted REAL_NODE_TAINT. Needs root. Default false.
   */
  realNode?: boolean;
}

export const SERVICE_CIDR = "10.0.0.0/24";
/** The `kubernetes` Service's ClusterIP (the first address of SERVICE_CIDR). */
export const KUBERNETES_SERVICE_IP = "10.0.0.1";
export const FAKE_NODE_LABEL = "trellis.dev/fake-node";
export { freePort };

export class LocalCluster {
  readonly kubeconfigPath: string;
  private apiServer: ManagedProcess | undefined;
  private stopped = false;
  private node: RealNode | undefined;

  private constructor(
    readonly dir: string,
    readonly pki: ClusterPki,
    readonly binaries: ClusterBinaries,
    readonly server: string,
    readonly apiServerPort: number,
    private readonly apiServerArgs: string[],
    private readonly group: ProcessGroup,
    private readonly log: (msg: string) => void,
  ) {
    this.kubeconfigPath = join(dir, "kubeconfig");
  }

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const started = Date.now();
    const log = options.verbose
      ? (m: string) =>
          process.stderr.write(`[cluster +${((Date.now() - started) / 1000).toFixed(1)}s] ${m}\n`)
      : () => {};
    const binaries = clusterBinaries();
    const kubelet = options.realNode ? kubeletBinary() : undefined;
    const coredns = options.realNode ? corednsBinary() : undefined;
    removeStaleClusterDirs(Boolean(options.realNode));
    const dir = mkdtempSync(join(tmpdir(), "trellis-cluster-"));
    writeFileSync(join(dir, "owner.pid"), String(process.pid));
    const group = new ProcessGroup();
    let keepLogs = Boolean(process.env.TRELLIS_KEEP_LOGS);
    let network: NodeNetwork | undefined;
    group.afterStop(() => {
      // Containers, mounts and the bridge go first: removing the dir must never cross a mount.
      if (network) removeRealNodeLeftovers(dir, SERVICE_CIDR);
      if (keepLogs) process.stderr.write(`cluster logs kept in ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    });
    try {
      if (options.realNode) network = createNodeNetwork(dir, SERVICE_CIDR);
      const pki = createClusterPki(dir, network ? [network.gatewayIp] : []);
      const extraApiServerArgs = [...(options.apiServerArgs ?? [])];
      if (network) extraApiServerArgs.unshift(...realNodeApiServerFlags(pki, network));
      const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
      const etcdUrl = `http://127.0.0.1:${etcdPort}`;
      group.start({
        name: "etcd",
        command: binaries.etcd,
        args: [
          `--data-dir=${join(dir, "etcd")}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
          "--unsafe-no-fsync",
          "--quota-backend-bytes=8589934592",
          "--log-level=warn",
        ],
        logFile: join(dir, "etcd.log"),
      });
      log(`etcd on ${etcdUrl}`);
      const server = `https://127.0.0.1:${apiPort}`;
      const apiServerArgs = apiServerFlags(pki, dir, etcdUrl, apiPort, extraApiServerArgs);
      const cluster = new LocalCluster(dir, pki, binaries, server, apiPort, apiServerArgs, group, log);
      writeKubeconfig(cluster.kubeconfigPath, server, pki.caCert, {
        name: "admin",
        certPath: pki.adminCert,
        keyPath: pki.adminKey,
      });
      await cluster.startApiServer();
      log("kube-apiserver ready");
      if (options.controllers !== false) cluster.startControllers(options.clientQps ?? 200);
      const nodes = options.nodes ?? 3;
      if (nodes > 0) {
        cluster.startKwok();
        await cluster.addFakeNodes(nodes);
      }
      if (options.controllers !== false) await cluster.waitForDefaultServiceAccount();
      if (network && kubelet && coredns) {
        const nodeStarted = Date.now();
        cluster.node = await RealNode.start({
          clusterDir: dir,
          pki,
          group,
          kubeConfig: cluster.kubeConfig(),
          server,
          apiServerPort: apiPort,
          kubeletPort: await freePort(),
          kubelet,
          coredns,
          kubeconfigPath: cluster.kubeconfigPath,
          dnsReadyPort: await freePort(),
          network,
          serviceCidr: SERVICE_CIDR,
          kubernetesServiceIp: KUBERNETES_SERVICE_IP,
          log,
        });
        log(`real node ${cluster.node.name} Ready in ${((Date.now() - nodeStarted) / 1000).toFixed(1)} s`);
      }
      log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s; KUBECONFIG=${cluster.kubeconfigPath}`);
      return cluster;
    } catch (err) {
      keepLogs = true;
      await group.stop(2000);
      throw err;
    }
  }

  /** The real node, when started with `realNode: true`. */
  get realNode(): RealNode {
    if (!this.node) throw new Error("this cluster has no real node: start it with { realNode: true }");
    return this.node;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /**
   * Runs the real kubectl against this cluster and returns stdout; throws with stderr on failure.
   * Synchronous: it blocks this process, where a real node's API forwarder and DNS server run, so
   * anything that waits (`kubectl wait`, `rollout status`) belongs in kubectlAsync.
   */
  kubectl(args: string[], input?: string): string {
    try {
      return execFileSync(this.binaries.kubectl, args, {
        env: { ...process.env, KUBECONFIG: this.kubeconfigPath },
        input,
        encoding: "utf8",
        stdio: ["pipe", "pipe", "pipe"],
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
    }
  }

  async kubectlAsync(args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(this.binaries.kubectl, args, {
      env: { ...process.env, KUBECONFIG: this.kubeconfigPath },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  }

  /** Stops the API server (SIGTERM) and starts it again on the same port with the same data. */
  async restartApiServer(downMs = 0): Promise<void> {
    if (this.apiServer) {
      await this.group.stopProcess(this.apiServer);
      this.group.forget(this.apiServer);
    }
    if (downMs > 0) await sleep(downMs);
    await this.startApiServer();
  }

  async addFakeNodes(count: number, prefix = "kwok-node"): Promise<string[]> {
    const api = this.kubeConfig().makeApiClient(CoreV1Api);
    const existing = (await api.listNode({ labelSelector: FAKE_NODE_LABEL })).items.length;
    const names: string[] = [];
    for (let i = existing; i < existing + count; i++) {
      const name = `${prefix}-${i}`;
      names.push(name);
      const node: V1Node = {
        metadata: {
          name,
          annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
          labels: {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node-role.kubernetes.io/agent": "",
            type: "kwok",
            [FAKE_NODE_LABEL]: "true",
          },
        },
        // Each node gets a /16 so that thousands of pods fit; these addresses are never dialled.
        spec: { podCIDR: `10.${100 + i}.0.0/16`, podCIDRs: [`10.${100 + i}.0.0/16`] },
      };
      await api.createNode({ body: node });
    }
    await waitFor(
      async () => {
        const list = await api.listNode({ labelSelector: FAKE_NODE_LABEL });
        return list.items.filter(isNodeReady).length >= existing + count;
      },
      60_000,
      "fake nodes to become Ready",
    );
    this.log(`${count} fake node(s) Ready`);
    return names;
  }

  /** PIDs of the cluster's processes that are running. */
  pids(): number[] {
    return this.group.pids();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.node?.drain();
    await this.group.stop();
  }

  /** The last lines of a component's log, for test failure messages. */
  logTail(component: string, lines = 30): string {
    try {
      return readFileSync(join(this.dir, `${component}.log`), "utf8")
        .split("\n")
        .slice(-lines)
        .join("\n");
    } catch {
      return "";
    }
  }

  private async startApiServer(): Promise<void> {
    this.apiServer = this.group.start({
      name: "kube-apiserver",
      command: this.binaries.kubeApiserver,
      args: this.apiServerArgs,
      logFile: join(this.dir, "kube-apiserver.log"),
    });
    const proc = this.apiServer;
    await waitFor(
      async () => {
        if (proc.exitCode() !== undefined) {
          throw new Error(`kube-apiserver exited (${proc.exitCode()}):\n${this.logTail("kube-apiserver")}`);
        }
        return (await this.getStatus("/readyz")) === 200;
      },
      60_000,
      "kube-apiserver /readyz",
    );
  }

  private startControllers(qps: number): void {
    const kc = this.kubeconfigPath;
    this.group.start({
      name: "kube-controller-manager",
      command: this.binaries.kubeControllerManager,
      args: [
        `--kubeconfig=${kc}`,
        `--authentication-kubeconfig=${kc}`,
        `--authorization-kubeconfig=${kc}`,
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--leader-elect=false",
        `--service-account-private-key-file=${this.pki.serviceAccountKey}`,
        `--root-ca-file=${this.pki.caCert}`,
        "--use-service-account-credentials",
        "--controllers=*,-nodeipam",
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        `--kube-api-qps=${qps}`,
        `--kube-api-burst=${qps * 2}`,
        "--concurrent-deployment-syncs=20",
        "--concurrent-replicaset-syncs=20",
        "--v=1",
      ],
      logFile: join(this.dir, "kube-controller-manager.log"),
    });
    const schedulerConfig = join(this.dir, "scheduler.yaml");
    writeFileSync(
      schedulerConfig,
      `apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: ${kc}
  qps: ${qps}
  burst: ${qps * 2}
leaderElection:
  leaderElect: false
`,
    );
    this.group.start({
      name: "kube-scheduler",
      command: this.binaries.kubeScheduler,
      args: [
        `--config=${schedulerConfig}`,
        `--authentication-kubeconfig=${kc}`,
        `--authorization-kubeconfig=${kc}`,
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--v=1",
      ],
      logFile: join(this.dir, "kube-scheduler.log"),
    });
  }

  private startKwok(): void {
    this.group.start({
      name: "kwok",
      command: this.binaries.kwok,
      args: [
        `--kubeconfig=${this.kubeconfigPath}`,
        `--config=${join(repoRoot, "test/cluster/kwok-stages.yaml")}`,
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        "--node-ip=127.0.0.1",
        "--server-address=127.0.0.1:0",
      ],
      logFile: join(this.dir, "kwok.log"),
    });
  }

  private async waitForDefaultServiceAccount(): Promise<void> {
    const api = this.kubeConfig().makeApiClient(CoreV1Api);
    await waitFor(
      async () => {
        await api.readNamespacedServiceAccount({ name: "default", namespace: "default" });
        return true;
      },
      60_000,
      "the default ServiceAccount (kube-controller-manager)",
    );
  }

  /** GET on the API server with the admin certificate; returns the HTTP status (0 when unreachable). */
  private getStatus(path: string): Promise<number> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: this.apiServerPort,
          path,
          ca: readFileSync(this.pki.caCert),
          cert: readFileSync(this.pki.adminCert),
          key: readFileSync(this.pki.adminKey),
          timeout: 2000,
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", () => resolve(0));
      req.on("timeout", () => req.destroy());
      req.end();
    });
  }
}

/**
 * Removes the data of clusters whose owning process died without cleaning up (e.g. SIGKILL),
 * and first what their real node left behind (containers, mounts, bridge, route).
 */
function removeStaleClusterDirs(realNode: boolean): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith("trellis-cluster-")) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try {
      owner = Number(readFileSync(join(dir, "owner.pid"), "utf8"));
    } catch {
      continue; // being created, or not ours to judge
    }
    // An empty or half-written pid file is a cluster being created: not ours to judge.
    if (!Number.isInteger(owner) || owner <= 0 || isRunning(owner)) continue;
    if (existsSync(join(dir, "node"))) removeRealNodeLeftovers(dir, SERVICE_CIDR);
    rmSync(dir, { recursive: true, force: true });
  }
  if (realNode) removeOrphanedNodeNetworks(SERVICE_CIDR);
}

function apiServerFlags(
  pki: ClusterPki,
  dir: string,
  etcdUrl: string,
  port: number,
  extra: string[],
): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    "--bind-address=127.0.0.1",
    // A real node's flags (in `extra`) replace this with the gateway address; the last one wins.
    "--advertise-address=127.0.0.1",
    `--secure-port=${port}`,
    `--tls-cert-file=${pki.apiServerCert}`,
    `--tls-private-key-file=${pki.apiServerKey}`,
    `--client-ca-file=${pki.caCert}`,
    `--service-account-key-file=${pki.serviceAccountPub}`,
    `--service-account-signing-key-file=${pki.serviceAccountKey}`,
    "--service-account-issuer=https://kubernetes.default.svc",
    "--authorization-mode=Node,RBAC",
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    "--enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
    "--allow-privileged=true",
    "--max-requests-inflight=2000",
    "--max-mutating-requests-inflight=1000",
    `--cert-dir=${join(dir, "apiserver-certs")}`,
    "--profiling=false",
    "--v=1",
    ...extra,
  ];
}

export function isNodeReady(node: V1Node): boolean {
  return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

/** Polls `check` until it returns true; errors thrown by `check` count as "not yet" unless fatal. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof Error && err.message.includes("exited")) throw err;
      last = err;
    }
    await sleep(intervalMs);
  }
  const detail = last instanceof Error ? `: ${last.message}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

export const startLocalCluster = LocalCluster.start;
