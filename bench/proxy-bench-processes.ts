/**
 * Process plumbing for the proxy benchmark: start a child and wait for a line on stdout,
 * sample a process's CPU time and RSS from /proc, run wrk and parse it. Every child is
 * recorded so the benchmark can kill it by PID on any exit.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";

const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null) process.kill(c.pid, "SIGKILL");
});

export interface Started {
  child: ChildProcess;
  pid: number;
  line: string;
}

/** Spawns a command and resolves with the first stdout line matching `ready` (or at once if undefined). */
export function start(
  cmd: string,
  args: string[],
  ready: RegExp | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Started> {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stderr!.on("data", (d: Buffer) => {
      err += d.toString();
    });
    if (!ready) {
      setTimeout(() => resolve({ child, pid: child.pid!, line: "" }), 300);
    } else {
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        const line = out.split("\n").find((l) => ready.test(l));
        if (line) resolve({ child, pid: child.pid!, line });
      });
    }
    child.once("exit", (code) => reject(new Error(`${cmd} exited ${code} before ready: ${out}${err}`)));
  });
}

export function stop(s: Started | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    s.child.once("exit", () => resolve());
    process.kill(s.pid, "SIGKILL");
  });
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

/**
 * The anonymous part of the RSS (heap, stacks, malloc): what the process itself holds. The
 * rest is file-backed, mostly the pages of the node binary it runs (~31 MB for an empty node
 * 20), shared with every process mapping the same file and reclaimable under pressure.
 */
export function rssAnonMb(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

export function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 1 << 20 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}

export interface WrkResult {
  rps: number;
  requests: number;
  p99Ms: number;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "s" ? n * 1000 : n;
}

export async function wrk(
  url: string,
  host: string,
  seconds: number,
  connections: number,
): Promise<WrkResult> {
  const out = await run("wrk", [
    "-t1",
    `-c${connections}`,
    `-d${seconds}s`,
    "--latency",
    "-H",
    `Host: ${host}`,
    url,
  ]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const p99 = /\s99%\s+([\d.]+)(us|ms|s)/.exec(out);
  return { rps, requests, p99Ms: p99 ? toMs(p99[1]!, p99[2]!) : 0 };
}
