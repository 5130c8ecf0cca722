// Removing what a real node leaves outside its processes: containerd shims (which outlive
// containerd by design) and the containers below them, their cgroups and shim sockets, mounts
// under the cluster dir (rootfs overlays, shm, network namespace files, kubelet volumes), the
// bridge and route, and the kubelet's /var/log/containers links. Synchronous, so that it runs
// from exit paths too, and idempotent; used on stop and, for a SIGKILLed owner, on the next start.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { containerdSocket, nodeDir } from "./node-config.ts";
import { harnessBridges, removeNodeNetwork } from "./node-network.ts";
import { isRunning } from "./processes.ts";

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
  for (let i = 0; i < 50 && [...victims].some(isRunning); i++) sleepSync(100);
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
