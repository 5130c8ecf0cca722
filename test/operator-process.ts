// Runs `trellis operator` as a real child process against a local cluster, the way a user runs
// it on a host, and stops it by PID (gracefully, or with SIGKILL to simulate a crash).

import { createReadStream, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { operatorNodeEnvironment, operatorNodeFlags } from "../operator/runtime-flags.ts";
import { repoRoot } from "./cluster/binaries.ts";
import type { LocalCluster } from "./cluster/local-cluster.ts";
import { waitFor } from "./cluster/local-cluster.ts";
import { type ManagedProcess, ProcessGroup } from "./cluster/process-group.ts";
import { imageEnvironment } from "./image-environment.ts";

export interface OperatorProcess {
  process: ManagedProcess;
  logFile: string;
  stop(): Promise<void>;
  kill(): Promise<void>;
  /** The port of /healthz, /readyz and /metrics. */
  port: number;
  /** Parsed JSON log lines written so far. */
  logs(): Promise<Array<Record<string, unknown>>>;
}

let counter = 0;

export async function startOperator(
  cluster: LocalCluster,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  /** A bundled operator (hack/bundle.ts's trellis.mjs) to run under plain node instead of the sources under tsx. */
  bundle?: string,
): Promise<OperatorProcess> {
  const group = new ProcessGroup();
  const logFile = join(cluster.dir, `operator-${++counter}.log`);
  const proc = group.start({
    name: "trellis-operator",
    command: process.execPath,
    args: [
      // The image's flags (operator/runtime-flags.ts), so tests and benchmarks run it as shipped;
      // BENCH_OPERATOR_NODE_FLAGS replaces them to measure others.
      ...(process.env.BENCH_OPERATOR_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? operatorNodeFlags),
      ...(bundle ? [bundle] : ["--import", "tsx", join(repoRoot, "bin/trellis.ts")]),
      "operator",
      `--kubeconfig=${cluster.kubeconfigPath}`,
      "--metrics-port=0",
      "--metrics-host=127.0.0.1",
      ...args,
    ],
    logFile,
    cwd: repoRoot,
    // The image's variables too; BENCH_OPERATOR_NODE_ENV ("K=V …" or "none") replaces them.
    env: {
      ...process.env,
      ...imageEnvironment(process.env.BENCH_OPERATOR_NODE_ENV, operatorNodeEnvironment),
      ...env,
    },
  });
  const op: OperatorProcess = {
    port: 0,
    process: proc,
    logFile,
    stop: () => group.stop(10_000),
    kill: async () => {
      proc.child.kill("SIGKILL");
      await proc.exited;
      await group.stop();
    },
    logs: async () => {
      const lines: Array<Record<string, unknown>> = [];
      for await (const line of createInterface({ input: createReadStream(logFile) })) {
        try {
          lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not a log line (e.g. a Node warning)
        }
      }
      return lines;
    },
  };
  await waitFor(
    async () => {
      if (proc.exitCode() !== undefined)
        throw new Error(`operator exited (${proc.exitCode()}); see ${logFile}`);
      const serving = (await op.logs()).find((l) => l.msg === "manager serving health and metrics");
      op.port = Number(serving?.port ?? 0);
      return serving !== undefined;
    },
    30_000,
    "the operator to start",
  );
  return op;
}

/** GET on the operator's HTTP server. */
export async function operatorHttp(
  op: OperatorProcess,
  path: string,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${op.port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** The value of a Prometheus series (summed over label sets matching `labels`). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

/**
 * Runs the injector (`controlplane/main.ts injector`) on 127.0.0.1:`port` and waits until it
 * serves (again, when a test stopped it and starts it anew: its log is appended to).
 */
export async function startInjector(
  cluster: LocalCluster,
  group: ProcessGroup,
  port: number,
): Promise<ManagedProcess> {
  const logFile = join(cluster.dir, "injector.log");
  const serving = () =>
    existsSync(logFile) ? readFileSync(logFile, "utf8").split("injector serving").length - 1 : 0;
  const before = serving();
  const injector = group.start({
    name: "injector",
    command: process.execPath,
    args: [
      "--import",
      "tsx",
      "controlplane/main.ts",
      "injector",
      `--kubeconfig=${cluster.kubeconfigPath}`,
      `--port=${port}`,
      "--host=127.0.0.1",
      "--admin-port=0",
    ],
    logFile,
    cwd: repoRoot,
  });
  await waitFor(
    async () => {
      if (injector.exitCode() !== undefined)
        throw new Error(`injector exited: ${cluster.logTail("injector")}`);
      return serving() > before;
    },
    30_000,
    "the injector to serve",
  );
  return injector;
}

/** Applies Trellis's CRDs (crds/) server-side and waits until the API server serves them. */
export async function installCrds(cluster: LocalCluster): Promise<void> {
  cluster.kubectl(["apply", "--server-side", "-f", join(repoRoot, "crds")]);
  await cluster.kubectlAsync([
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    "crd",
    "-l",
    "app.kubernetes.io/part-of=trellis",
  ]);
}
