// The rollout scale run, shared by bench/rollout-scale.bench.ts (2,000 workloads / 10,000 pods)
// and its smaller twin in the test suite: a local cluster with KWOK nodes, the operator and the
// injector as real processes, W meshed Deployments of R replicas across namespaces, then one
// proxy rollout through the canary and the waves. It measures wall clock against the sum of the
// configured analysis waits, the operator's API requests, peak RSS and CPU, reconcile p99, and
// checks that no workload restarted twice. The peer, measured in the same run, is `kubectl
// rollout restart` of every Deployment at once (no canary, no waits).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../test/cluster/binaries.ts";
import { freePort, LocalCluster, waitFor } from "../test/cluster/local-cluster.ts";
import { ProcessGroup } from "../test/cluster/process-group.ts";
import {
  metricValue,
  type OperatorProcess,
  operatorHttp,
  startInjector,
  startOperator,
} from "../test/operator-process.ts";

export interface ScaleParams {
  workloads: number;
  replicas: number;
  namespaces: number;
  nodes: number;
  /** Analysis interval of each step, e.g. "10s". */
  interval: string;
  waves: number[];
  canaryPercent: number;
  maxConcurrentRestarts: number;
  /** Also time the peer (kubectl rollout restart of everything). */
  peer: boolean;
  /** Run the operator as shipped (this path: a trellis.mjs from hack/bundle.ts) rather than from the sources under tsx. */
  operatorBundle?: string;
  /**
   * After the rollout: this share of workloads (percent, by count) is created while the injector
   * is down, so their pods run without a proxy; then the injector starts and the repair is timed.
   */
  repairPercent?: number;
  log: (line: string) => void;
}

export interface ScaleFigures {
  pods: number;
  workloads: number;
  steps: number;
  sumOfWaitsS: number;
  rolloutWallS: number;
  overheadRatio: number;
  apiWrites: number;
  apiReads: number;
  writesPerWorkload: number;
  requestsPerPod: number;
  peakRssMb: number;
  cpuSeconds: number;
  reconcileP99S: number | undefined;
  restartedTwice: number;
  notRestarted: number;
  /** Pods running without a proxy when the rollout ended (the webhook failed open for them). */
  podsWithoutProxy: number;
  peerWallS: number | undefined;
  repair?: RepairFigures;
}

export interface RepairFigures {
  workloads: number;
  pods: number;
  /** From the injector's start to the repair Complete and no pod without a proxy. */
  wallS: number;
  apiWrites: number;
  writesPerWorkload: number;
  /** The operator's peak RSS over its whole life, read after the repair. */
  peakRssMb: number;
  cpuSeconds: number;
  restartedTwice: number;
  notRestarted: number;
}

function deploymentsYaml(ns: string, names: string[], replicas: number): string {
  return names
    .map(
      (name) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${ns} }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  strategy: { rollingUpdate: { maxUnavailable: 25%, maxSurge: 25% } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: app, image: "localhost/app:1", ports: [{ containerPort: 8080 }] }] }
`,
    )
    .join("---\n");
}

/** CPU seconds (user+system) and peak RSS of a process, from /proc. */
function processUsage(pid: number): { cpuSeconds: number; peakRssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return { cpuSeconds: ticks / 100, peakRssMb: Number(hwm ?? 0) / 1024 };
}

/** p99 of a Prometheus histogram from its cumulative buckets (upper bound of the bucket). */
export function histogramP99(text: string, name: string, labels: Record<string, string>): number | undefined {
  const buckets: Array<[number, number]> = [];
  for (const line of text.split("\n")) {
    if (
      !line.startsWith(`${name}_bucket{`) ||
      !Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))
    )
      continue;
    const le = /le="([^"]+)"/.exec(line)?.[1];
    buckets.push([
      le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le),
      Number(line.slice(line.lastIndexOf(" ") + 1)),
    ]);
  }
  const total = buckets.find(([le]) => le === Number.POSITIVE_INFINITY)?.[1] ?? 0;
  if (total === 0) return undefined;
  return buckets.sort((a, b) => a[0] - b[0]).find(([, count]) => count >= total * 0.99)?.[0];
}

async function meshProxies(
  cluster: LocalCluster,
): Promise<{ summary?: string; version?: string; state?: string; step?: string }> {
  const out = await cluster.kubectlAsync([
    "get",
    "mesh",
    "default",
    "-o",
    "jsonpath={.status.proxies.summary}|{.status.proxies.version}|{.status.rollout.state}|{.status.rollout.step}",
  ]);
  const [summary, version, state, step] = out.split("|");
  // "updated/total", then "(3 pending, ...)" when some pods are not the rollout's to restart.
  return { summary: summary?.split(" ")[0], version, state, step };
}

/**
 * Every Deployment has seen its latest spec and has all its replicas updated, available and no
 * others: the cluster has settled (KWOK has run every pod). A rollout timed from an unsettled
 * cluster would measure KWOK's backlog of pod creations too.
 */
async function deploymentsSettled(cluster: LocalCluster): Promise<boolean> {
  const out = await cluster.kubectlAsync([
    "get",
    "deployments",
    "-A",
    "-o",
    "jsonpath={range .items[*]}{.status.updatedReplicas}/{.status.availableReplicas}/{.spec.replicas}/{.status.replicas}/{.metadata.generation}/{.status.observedGeneration} {end}",
  ]);
  return out
    .trim()
    .split(" ")
    .every((s) => {
      const [u, a, r, t, g, o] = s.split("/");
      return u === r && a === r && t === r && g === o;
    });
}

export async function runRolloutScale(p: ScaleParams): Promise<ScaleFigures> {
  const cluster = await LocalCluster.start({ nodes: p.nodes, clientQps: 400, verbose: false });
  const group = new ProcessGroup();
  let operator: OperatorProcess | undefined;
  try {
    cluster.kubectl(["apply", "--server-side", "-f", join(repoRoot, "crds")]);
    cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=30s",
      "crd",
      "-l",
      "app.kubernetes.io/part-of=trellis",
    ]);
    const port = await freePort();
    const injectorUrl = `--injector-url=https://127.0.0.1:${port}/inject`;
    operator = await startOperator(cluster, ["--no-leader-elect", injectorUrl], {}, p.operatorBundle);
    const waves = `[${p.waves.join(", ")}]`;
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: 1.0.0
  upgrade: { canary: { percent: ${p.canaryPercent} }, waves: ${waves}, maxConcurrentRestarts: ${p.maxConcurrentRestarts}, analysis: { interval: ${p.interval} }, stepDeadline: 30m }
`,
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=120s", "mesh/default"]);
    let injector = await startInjector(cluster, group, port);
    await waitFor(
      async () => (await operatorHttp(operator as OperatorProcess, "/readyz")).status === 200,
      30_000,
      "operator",
    );
    await new Promise((r) => setTimeout(r, 3000));
    const pods = p.workloads * p.replicas;
    p.log(
      `creating ${p.workloads} Deployments × ${p.replicas} replicas in ${p.namespaces} namespaces (${pods} pods)`,
    );
    const created = Date.now();
    for (let n = 0; n < p.namespaces; n++) {
      const ns = `app-${n}`;
      cluster.kubectl(
        ["apply", "-f", "-"],
        `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${ns}, annotations: { trellis.dev/inject: enabled } }\n`,
      );
    }
    await new Promise((r) => setTimeout(r, 2000));
    for (let n = 0; n < p.namespaces; n++) {
      const names = Array.from(
        { length: Math.ceil(p.workloads / p.namespaces) },
        (_, i) => `w-${n}-${i}`,
      ).filter((_, i) => i * p.namespaces + n < p.workloads);
      cluster.kubectl(["apply", "--server-side", "-f", "-"], deploymentsYaml(`app-${n}`, names, p.replicas));
    }
    // The webhook fails open (failurePolicy Ignore): under a burst a pod may be created without
    // the proxy. Wait for the count to settle, then take the injected count the operator reports.
    let last = "";
    let stableSince = Date.now();
    await waitFor(
      async () => {
        const m = await meshProxies(cluster);
        if (m.summary !== last) [last, stableSince] = [m.summary ?? "", Date.now()];
        const total = Number(m.summary?.split("/")[1] ?? 0);
        return total >= pods * 0.99 && Date.now() - stableSince > 5000;
      },
      30 * 60_000,
      `${pods} pods`,
      1000,
    );
    const injected = Number(last.split("/")[1]);
    p.log(`${injected} of ${pods} pods meshed after ${((Date.now() - created) / 1000).toFixed(0)} s`);
    await waitFor(() => deploymentsSettled(cluster), 60 * 60_000, "every pod to run", 2000);
    p.log(`every Deployment available after ${((Date.now() - created) / 1000).toFixed(0)} s`);

    const before = (await operatorHttp(operator, "/metrics")).body;
    const usageBefore = processUsage(operator.process.child.pid as number);
    const started = Date.now();
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      '{"spec":{"proxy":{"version":"1.1.0"}}}',
    ]);
    // Where the time goes: each change of step or state, with the time since the rollout began.
    let phase = "";
    let meshedAtEnd = 0;
    await waitFor(
      async () => {
        const m = await meshProxies(cluster);
        const now = `step ${m.step} ${m.state}`;
        if (now !== phase) {
          phase = now;
          p.log(`+${((Date.now() - started) / 1000).toFixed(1)} s: ${now} (${m.summary})`);
        }
        // Every proxy on the new version. Not `${injected}/${injected}`: the count of pods with
        // a proxy may change when pods are replaced (a pod the webhook failed open for has none);
        // those are counted below instead of waited for.
        const [updated, total] = (m.summary ?? "").split("/");
        if (m.state === "Complete" && m.version === "1.1.0" && updated === total) {
          meshedAtEnd = Number(total);
          return true;
        }
        return false;
      },
      120 * 60_000,
      "the rollout to finish",
      1000,
    );
    const rolloutWallS = (Date.now() - started) / 1000;
    const after = (await operatorHttp(operator, "/metrics")).body;
    const usage = processUsage(operator.process.child.pid as number);
    const apiWrites = writesBetween(before, after);
    const apiReads = requestsBetween(before, after, "GET");
    const perWorkload = await replicaSetsPer(cluster, "w-");
    const steps = 1 + p.waves.length;
    // A wave that adds no workload to the step before it passes without an analysis wait.
    const upTo = [Math.max(1, Math.ceil((p.workloads * p.canaryPercent) / 100))];
    for (const pct of p.waves) upTo.push(Math.max(upTo[0]!, Math.ceil((p.workloads * pct) / 100)));
    const analysed = upTo.filter((n, i) => i === 0 || n > upTo[i - 1]!).length;
    const sumOfWaitsS = analysed * (Number.parseFloat(p.interval) * (p.interval.endsWith("m") ? 60 : 1));
    let repair: RepairFigures | undefined;
    if ((p.repairPercent ?? 0) > 0) {
      await group.stopProcess(injector);
      repair = await repairScenario(cluster, operator, p, async () => {
        injector = await startInjector(cluster, group, port);
      });
    }
    let peerWallS: number | undefined;
    p.log(
      `rollout: ${rolloutWallS.toFixed(1)} s for ${steps} steps of ${p.interval}; ${apiWrites} writes, ${apiReads} reads; peak RSS ${usage.peakRssMb.toFixed(1)} MB`,
    );
    if (p.peer) {
      p.log("peer: kubectl rollout restart of every Deployment at once");
      const peerStart = Date.now();
      await Promise.all(
        Array.from({ length: p.namespaces }, (_, n) =>
          cluster.kubectlAsync(["-n", `app-${n}`, "rollout", "restart", "deployment"]),
        ),
      );
      await waitFor(() => deploymentsSettled(cluster), 120 * 60_000, "the peer restart", 1000);
      peerWallS = (Date.now() - peerStart) / 1000;
    }
    return {
      pods,
      workloads: p.workloads,
      steps,
      sumOfWaitsS,
      rolloutWallS,
      overheadRatio: rolloutWallS / sumOfWaitsS,
      apiWrites,
      apiReads,
      writesPerWorkload: apiWrites / p.workloads,
      requestsPerPod: (apiWrites + apiReads) / pods,
      peakRssMb: usage.peakRssMb,
      cpuSeconds: usage.cpuSeconds - usageBefore.cpuSeconds,
      reconcileP99S: histogramP99(after, "trellis_controller_reconcile_time_seconds", {
        controller: "rollout",
      }),
      restartedTwice: [...perWorkload.values()].filter((n) => n > 2).length,
      notRestarted: [...perWorkload.values()].filter((n) => n < 2).length,
      podsWithoutProxy: pods - meshedAtEnd,
      peerWallS,
      ...(repair ? { repair } : {}),
    };
  } finally {
    await group.stop();
    await operator?.stop();
    await cluster.stop();
  }
}

/** Template revisions per Deployment whose name starts with `prefix`, across namespaces. */
async function replicaSetsPer(cluster: LocalCluster, prefix: string): Promise<Map<string, number>> {
  const owners = (
    await cluster.kubectlAsync([
      "get",
      "rs",
      "-A",
      "-o",
      "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.ownerReferences[0].name}{'\\n'}{end}",
    ])
  )
    .trim()
    .split("\n")
    .filter((l) => l.includes(`/${prefix}`));
  const per = new Map<string, number>();
  for (const o of owners) per.set(o, (per.get(o) ?? 0) + 1);
  return per;
}

/**
 * The repair scenario: with the injector down, REPAIR% more Deployments are created (their pods
 * admitted without a proxy: the webhook fails open); the operator reports them and waits; the
 * injector starts, and the repair is timed until every pod carries a proxy.
 */
async function repairScenario(
  cluster: LocalCluster,
  operator: OperatorProcess,
  p: ScaleParams,
  startInjectorAgain: () => Promise<void>,
): Promise<RepairFigures> {
  const count = Math.max(1, Math.round((p.workloads * (p.repairPercent ?? 0)) / 100));
  const pods = count * p.replicas;
  p.log(`repair: injector stopped; creating ${count} Deployments (${pods} pods) that run without a proxy`);
  for (let n = 0; n < p.namespaces; n++) {
    const names = Array.from({ length: Math.ceil(count / p.namespaces) }, (_, i) => `r-${n}-${i}`).filter(
      (_, i) => i * p.namespaces + n < count,
    );
    if (names.length > 0)
      cluster.kubectl(["apply", "--server-side", "-f", "-"], deploymentsYaml(`app-${n}`, names, p.replicas));
  }
  const missing = async () =>
    Number(
      (await cluster.kubectlAsync(["get", "mesh", "default", "-o", "jsonpath={.status.proxies.missing}"])) ||
        0,
    );
  await waitFor(async () => (await missing()) >= pods, 60 * 60_000, `${pods} pods reported missing`, 2000);
  await waitFor(() => deploymentsSettled(cluster), 60 * 60_000, "the new pods to run", 2000);
  const before = (await operatorHttp(operator, "/metrics")).body;
  const usageBefore = processUsage(operator.process.child.pid as number);
  const started = Date.now();
  await startInjectorAgain();
  p.log("repair: injector started");
  let state = "";
  await waitFor(
    async () => {
      const out = await cluster.kubectlAsync([
        "get",
        "mesh",
        "default",
        "-o",
        "jsonpath={.status.repair.state}|{.status.repair.step}|{.status.proxies.missing}",
      ]);
      const [s, step, left] = out.split("|");
      if (`${s} ${step}` !== state) {
        state = `${s} ${step}`;
        p.log(
          `repair +${((Date.now() - started) / 1000).toFixed(1)} s: step ${step} ${s} (${left || 0} missing)`,
        );
      }
      return s === "Complete" && !Number(left);
    },
    120 * 60_000,
    "the repair to finish",
    1000,
  );
  const wallS = (Date.now() - started) / 1000;
  const after = (await operatorHttp(operator, "/metrics")).body;
  const usage = processUsage(operator.process.child.pid as number);
  const apiWrites = writesBetween(before, after);
  const per = await replicaSetsPer(cluster, "r-");
  return {
    workloads: count,
    pods,
    wallS,
    apiWrites,
    writesPerWorkload: apiWrites / count,
    peakRssMb: usage.peakRssMb,
    cpuSeconds: usage.cpuSeconds - usageBefore.cpuSeconds,
    restartedTwice: [...per.values()].filter((n) => n > 2).length,
    notRestarted: count - [...per.values()].filter((n) => n >= 2).length,
  };
}

/** The operator's API requests of `verb` between two scrapes of its metrics. */
function requestsBetween(before: string, after: string, verb: string): number {
  return (
    metricValue(after, "trellis_kube_api_requests_total", { verb }) -
    metricValue(before, "trellis_kube_api_requests_total", { verb })
  );
}

function writesBetween(before: string, after: string): number {
  return ["POST", "PUT", "PATCH", "DELETE"].reduce((n, v) => n + requestsBetween(before, after, v), 0);
}
