// Leader election between real operator processes (leader-election.child.ts) on a real API
// server: only the leader reconciles; when the leader is SIGKILLed the standby takes over within
// the lease duration; a graceful stop releases the lease so the standby takes over at once; a
// leader that cannot renew (API server down longer than the renew deadline) exits.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { CoreV1Api } from "@kubernetes/client-node";
import { LocalCluster, waitFor } from "../test/cluster/local-cluster.ts";

const CHILD = fileURLToPath(new URL("./leader-election.child.ts", import.meta.url));
const LEASE_DURATION_MS = 3000;

interface Line {
  event: string;
  identity: string;
  t: number;
  port?: number;
}

class Replica {
  readonly lines: Line[] = [];
  readonly process: ChildProcess;
  exitCode: number | null | undefined;
  /** When the test saw the process exit: a reconcile it was killed in the middle of ends here. */
  exitedAt: number | undefined;

  constructor(
    kubeconfig: string,
    readonly identity: string,
  ) {
    this.process = spawn(process.execPath, ["--import", "tsx", CHILD], {
      env: { ...process.env, KUBECONFIG: kubeconfig, IDENTITY: identity },
      stdio: ["ignore", "pipe", "inherit"],
    });
    createInterface({ input: this.process.stdout! }).on("line", (l) => {
      if (l.startsWith("{")) this.lines.push(JSON.parse(l) as Line);
    });
    this.process.on("exit", (code) => {
      this.exitCode = code;
      this.exitedAt = Date.now();
    });
  }

  has(event: string): Line | undefined {
    return this.lines.find((l) => l.event === event);
  }

  reconciles(): Line[] {
    return this.lines.filter((l) => l.event === "reconcile-start");
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exitCode === undefined && this.process.pid) process.kill(this.process.pid, signal);
  }
}

/**
 * Reconcile intervals of different replicas never overlap. A replica SIGKILLed in the middle of a
 * reconcile (20 ms of every 100 ms) never prints its end: that reconcile ends when the process
 * exited, which the test saw no earlier than the real exit.
 */
function assertNoOverlap(replicas: Replica[]): void {
  const intervals = replicas.flatMap((r) => {
    const starts = r.lines.filter((l) => l.event === "reconcile-start");
    const ends = r.lines.filter((l) => l.event === "reconcile-end");
    return starts.map((s, i) => ({
      who: r.identity,
      from: s.t,
      to: ends[i]?.t ?? r.exitedAt ?? Number.POSITIVE_INFINITY,
    }));
  });
  intervals.sort((a, b) => a.from - b.from);
  for (let i = 1; i < intervals.length; i++) {
    const prev = intervals[i - 1]!;
    const cur = intervals[i]!;
    if (prev.who !== cur.who) assert.ok(cur.from >= prev.to, `${prev.who} and ${cur.who} reconciled at once`);
  }
}

describe("leader election between processes", { timeout: 90_000 }, () => {
  let cluster: LocalCluster;
  const replicas: Replica[] = [];
  const replica = (identity: string) => {
    const r = new Replica(cluster.kubeconfigPath, identity);
    replicas.push(r);
    return r;
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0, controllers: false });
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "leader" } } });
    await core.createNamespacedConfigMap({
      namespace: "leader",
      body: { metadata: { name: "work", labels: { test: "leader" } } },
    });
  });
  after(async () => {
    for (const r of replicas) r.kill("SIGKILL");
    await cluster?.stop();
  });

  it("only the leader reconciles; the standby takes over within the lease duration after SIGKILL", async (t) => {
    const a = replica("replica-a");
    await waitFor(async () => a.has("leading") !== undefined, 20_000, "replica-a to lead");
    const b = replica("replica-b");
    await waitFor(async () => b.has("started") !== undefined, 20_000, "replica-b to start");
    await sleep(1000);
    assert.ok(a.reconciles().length > 5, "the leader reconciles (resync every 100 ms)");
    assert.equal(b.reconciles().length, 0, "the standby does not");
    assert.equal(b.has("leading"), undefined);
    const readyz = await fetch(`http://127.0.0.1:${b.has("serving")?.port}/readyz`);
    assert.equal(readyz.status, 200, "a standby is ready");
    assert.match(await readyz.text(), /standby; leader is replica-a/);

    // Kill it in the middle of a reconcile (one is 20 ms of every 100 ms), the harder case.
    const started = a.reconciles().length;
    await waitFor(async () => a.reconciles().length > started, 2000, "replica-a to start a reconcile", 1);
    a.kill("SIGKILL");
    const killedAt = Date.now();
    await waitFor(async () => b.has("leading") !== undefined, 10_000, "replica-b to take over");
    const takeover = b.has("leading")!.t - killedAt;
    t.diagnostic(`takeover after SIGKILL: ${takeover} ms (lease duration ${LEASE_DURATION_MS} ms)`);
    assert.ok(takeover <= LEASE_DURATION_MS + 1500, `took over after ${takeover} ms`);
    await waitFor(async () => b.reconciles().length > 0, 5000, "replica-b to reconcile");
    assertNoOverlap([a, b]);
  });

  it("a graceful stop releases the lease and the standby takes over at once", async (t) => {
    const [, b] = replicas as [Replica, Replica];
    const c = replica("replica-c");
    await waitFor(async () => c.has("started") !== undefined, 20_000, "replica-c to start");
    await sleep(1000);
    assert.equal(c.reconciles().length, 0);
    b.kill("SIGTERM");
    const stoppedAt = Date.now();
    await waitFor(async () => b.exitCode !== undefined, 10_000, "replica-b to exit");
    assert.equal(b.exitCode, 0);
    await waitFor(async () => c.has("leading") !== undefined, 10_000, "replica-c to take over");
    const takeover = c.has("leading")!.t - stoppedAt;
    t.diagnostic(`takeover after a graceful stop: ${takeover} ms`);
    assert.ok(takeover < LEASE_DURATION_MS, `took over after ${takeover} ms, before the lease would expire`);
    assertNoOverlap(replicas);
  });

  it("a leader that cannot renew stops reconciling and exits", async (t) => {
    const c = replicas[2]!;
    await waitFor(async () => c.reconciles().length > 0, 5000, "replica-c to reconcile");
    const restarted = cluster.restartApiServer(3500);
    await waitFor(async () => c.exitCode !== undefined, 15_000, "replica-c to exit");
    const lastReconcile = c.reconciles().at(-1)!.t;
    t.diagnostic(`exited ${Date.now() - lastReconcile} ms after its last reconcile started`);
    assert.equal(c.exitCode, 1);
    await restarted;
  });
});
