// Collects every counted request of the end-to-end test's client pods (test/e2e/mesh-app.ts):
// polls GET /stats on each client pod's IP once a second, keeps a pod until its last samples are
// in, and files each sample under the phase of the test it was sent in (by its timestamp).
//
// Pod IPs are addresses inside network namespaces the harness made (the real node's pods); the
// collector never connects to anything else.
import http from "node:http";

export interface Sample {
  at: number;
  latencyMs: number;
  ok: boolean;
  /** The request class: protocol and form of address (h1-fqdn, grpc, tcp, ...). */
  proto: string;
  pod: string;
}

interface Stats {
  pod: string;
  done: boolean;
  sent: number;
  ok: number;
  failed: number;
  inFlight: number;
  servers: Record<string, number>;
  errors: string[];
  samples: Array<[number, number, number, string]>;
}

export interface ClientPod {
  name: string;
  ip: string;
}

/** An exchange that succeeded but took longer than this is reported as slow (not failed). */
export const SLOW_MS = 5000;

export interface PhaseFigures {
  phase: string;
  sent: number;
  failed: number;
  /** Succeeded, but after more than SLOW_MS. */
  slow: number;
  p50: number;
  p99: number;
  seconds: number;
}

function getStats(ip: string, port: number): Promise<Stats> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: ip, port, path: "/stats", timeout: 2000, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString()) as Stats);
        } catch (err) {
          reject(err);
        }
      });
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export class TrafficCollector {
  readonly samples: Sample[] = [];
  /** The last error lines each pod reported (the client keeps its last 50). */
  readonly errors = new Map<string, string[]>();
  /** "<client pod> <class> <server pod>[/<container>]" → exchanges answered. */
  readonly servers = new Map<string, number>();
  private readonly phases: Array<{ name: string; start: number }> = [];
  private readonly pods = new Map<string, { ip: string; misses: number; done: boolean }>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(
    private readonly listPods: () => Promise<ClientPod[]>,
    private readonly port = 9000,
  ) {}

  start(firstPhase: string): void {
    this.phase(firstPhase);
    this.timer = setInterval(() => {
      this.polling = this.polling.then(() => this.poll()).catch(() => {});
    }, 1000);
  }

  /** Requests sent from now on belong to `name`. */
  phase(name: string): void {
    this.phases.push({ name, start: Date.now() });
  }

  /** Polls until every pod seen has handed over its samples; then stops. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
    await this.poll();
  }

  /** Waits until the samples of every pod are in up to now (two full polls). */
  async flush(): Promise<void> {
    await this.polling;
    await this.poll();
    await this.poll();
  }

  private async poll(): Promise<void> {
    let listed: ClientPod[] = [];
    try {
      listed = await this.listPods();
    } catch {
      // the API server is busy; poll the pods already known
    }
    for (const p of listed)
      if (p.ip && !this.pods.has(p.name)) this.pods.set(p.name, { ip: p.ip, misses: 0, done: false });
    const present = new Set(listed.map((p) => p.name));
    await Promise.all(
      [...this.pods].map(async ([name, pod]) => {
        if (pod.misses >= 5) return;
        try {
          const s = await getStats(pod.ip, this.port);
          pod.misses = 0;
          pod.done = s.done;
          for (const [at, latencyMs, ok, proto] of s.samples)
            this.samples.push({ at, latencyMs, ok: ok === 1, proto, pod: name });
          this.errors.set(name, s.errors);
          for (const [server, n] of Object.entries(s.servers)) this.servers.set(`${name} ${server}`, n);
        } catch {
          // Gone: counted as a miss only once the pod is no longer listed (it has exited).
          if (!present.has(name)) pod.misses++;
        }
      }),
    );
  }

  /** The phase a request sent at `at` belongs to ("" before the first). */
  phaseOf(at: number): string {
    let name = "";
    for (const p of this.phases) if (p.start <= at) name = p.name;
    return name;
  }

  /** Sent, failed, p50 and p99 latency (ms) of the requests sent in each phase, in order. */
  figures(): PhaseFigures[] {
    return this.phases.map((p, i) => {
      const end = this.phases[i + 1]?.start ?? Number.POSITIVE_INFINITY;
      const inPhase = this.samples.filter((s) => s.at >= p.start && s.at < end);
      const ok = inPhase
        .filter((s) => s.ok)
        .map((s) => s.latencyMs)
        .sort((a, b) => a - b);
      const last = Math.min(end, Math.max(p.start, ...inPhase.map((s) => s.at)));
      return {
        phase: p.name,
        sent: inPhase.length,
        failed: inPhase.filter((s) => !s.ok).length,
        slow: inPhase.filter((s) => s.ok && s.latencyMs > SLOW_MS).length,
        p50: quantile(ok, 0.5),
        p99: quantile(ok, 0.99),
        seconds: (last - p.start) / 1000,
      };
    });
  }

  failedIn(phase: string): Sample[] {
    return this.samples.filter((s) => !s.ok && this.phaseOf(s.at) === phase);
  }

  /** Pods that have not yet handed over their final samples (still sending, or not yet polled after exit). */
  pending(): string[] {
    return [...this.pods].filter(([, p]) => !p.done && p.misses < 5).map(([n]) => n);
  }
}

export function formatTable(rows: PhaseFigures[]): string {
  const header = ["phase", "seconds", "sent", "failed", `> ${SLOW_MS / 1000} s`, "p50 ms", "p99 ms"];
  const lines = rows.map((r) => [
    r.phase,
    r.seconds.toFixed(0),
    String(r.sent),
    String(r.failed),
    String(r.slow),
    Number.isNaN(r.p50) ? "-" : r.p50.toFixed(2),
    Number.isNaN(r.p99) ? "-" : r.p99.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(" | ")} |`;
  return [
    fmt(header),
    `|${widths.map((w, i) => (i === 0 ? "-" : "").padEnd(w + 2, "-")).join("|")}|`,
    ...lines.map(fmt),
  ].join("\n");
}
