/**
 * Test fixture: real proxy processes (`node --import tsx proxy/main.ts`, or a bundle under
 * plain node) on loopback, with their config in a temp file, their ports read from the
 * start-up log line, and a guaranteed kill by PID when the test file ends — even when a test
 * fails.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repoRoot = new URL("../../", import.meta.url).pathname;
const live = new Set<ChildProcess>();

process.on("exit", () => {
  for (const child of live) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
});

export interface ProxyPorts {
  inbound?: number;
  outbound?: number;
  admin: number;
}

export interface ProxyProcess {
  pid: number;
  ports: ProxyPorts;
  output: () => string;
  /** Sends a signal and resolves with the exit code. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
  admin: (path: string) => Promise<{ status: number; body: string }>;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `trellis-${prefix}-`));
}

export function adminGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

export interface SpawnOptions {
  waitReady?: boolean;
  env?: Record<string, string>;
  /** A bundled proxy (dist/proxy.mjs) to run under plain node instead of the sources through tsx. */
  bundle?: string;
  /** Node/V8 flags put before the entry point (e.g. the image's heap flags). */
  nodeFlags?: string[];
}

/** Starts a proxy with `config` (listen ports may be 0) and waits for it to be ready. */
export async function spawnProxy(config: object, o: SpawnOptions = {}): Promise<ProxyProcess> {
  const dir = tempDir("proxy");
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ logLevel: "info", ...config }));
  const entry = o.bundle ? [o.bundle] : ["--import", "tsx", "proxy/main.ts"];
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), ...entry], {
    cwd: repoRoot,
    env: { ...process.env, TRELLIS_PROXY_CONFIG: file, ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  const ports = await new Promise<ProxyPorts>((resolve, reject) => {
    child.stdout!.on("data", (d: string) => {
      out += d;
      const m = /"ports":(\{[^}]*\})/.exec(out);
      if (m) resolve(JSON.parse(m[1]!) as ProxyPorts);
    });
    void exited.then((code) => reject(new Error(`proxy exited with ${code} before starting:\n${out}`)));
  });
  const proc: ProxyProcess = {
    pid: child.pid!,
    ports,
    output: () => out,
    stop: (signal = "SIGTERM") => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal);
      return exited;
    },
    admin: (path) => adminGet(ports.admin, path),
  };
  if (o.waitReady !== false) await waitFor(async () => (await proc.admin("/ready")).status === 200, 40_000);
  return proc;
}

/** Runs a process to completion (for configuration errors) and returns its exit code and stderr. */
export function runProxyExpectingExit(
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "proxy/main.ts"], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    live.add(child);
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => {
      stderr += d;
    });
    const timer = setTimeout(() => process.kill(child.pid!, "SIGKILL"), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, stderr });
    });
  });
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function metricValue(text: string, name: string, labels: Record<string, string>): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      total += Number(line.split(" ").pop());
  }
  return total;
}
