/**
 * Constant-rate (open-loop) HTTP/1.1 load generator for latency: sends `rate` requests per
 * second for `seconds` over a pool of keep-alive connections and measures each request from
 * its scheduled start, so a stall is charged to every request it delays (no coordinated
 * omission). Prints {sent, ok, errors, p50Us, p90Us, p99Us, maxUs} as JSON.
 *
 * Paired mode (a fifth argument, the upstream's own port): every scheduled request is sent at
 * the same moment twice, through the proxy and directly, the order alternating, and the report
 * adds the direct path's percentiles and those of the per-pair difference (`addedP50Us`,
 * `addedP99Us`): the latency the proxy added to that request. What both requests share — this
 * client's timer and GC stalls, the upstream's — cancels out of the difference, which
 * otherwise swamps a sub-millisecond figure when two separate runs' p99s are subtracted.
 *
 * Usage: node --import tsx bench/proxy-rate-client.ts <port> <host-header> <rate> <seconds> [direct-port]
 */
import http from "node:http";

const [port, host, rate, seconds] = [
  Number(process.argv[2]),
  process.argv[3]!,
  Number(process.argv[4]),
  Number(process.argv[5]),
];
const directPort = process.argv[6] === undefined ? undefined : Number(process.argv[6]);
const directHost = `127.0.0.1:${directPort}`;
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const directAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const total = Math.round(rate * seconds);
/** Latency in µs of request i through the proxy (and directly, paired mode); NaN = failed. */
const through = new Float64Array(total).fill(Number.NaN);
const direct = new Float64Array(total).fill(Number.NaN);
const expected = directPort === undefined ? total : 2 * total;
let done = 0;
let errors = 0;
let sent = 0;
const intervalMs = 1000 / rate;
let start = 0;

function send(
  toPort: number,
  hostHeader: string,
  via: http.Agent,
  into: Float64Array,
  i: number,
  scheduledAt: number,
): void {
  const finish = (ok: boolean) => {
    if (ok) into[i] = (performance.now() - scheduledAt) * 1000;
    else errors++;
    if (++done === expected) report();
  };
  const req = http.request(
    { host: "127.0.0.1", port: toPort, path: "/", headers: { host: hostHeader }, agent: via },
    (res) => {
      res.resume();
      res.on("end", () => finish(res.statusCode === 200));
    },
  );
  req.on("error", () => finish(false));
  req.end();
}

function fire(scheduledAt: number): void {
  const i = sent++;
  if (directPort === undefined) {
    send(port, host, agent, through, i, scheduledAt);
  } else if (i % 2 === 0) {
    send(port, host, agent, through, i, scheduledAt);
    send(directPort, directHost, directAgent, direct, i, scheduledAt);
  } else {
    send(directPort, directHost, directAgent, direct, i, scheduledAt);
    send(port, host, agent, through, i, scheduledAt);
  }
}

function tick(): void {
  const now = performance.now();
  const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
  while (sent < due) fire(start + sent * intervalMs);
  if (sent < total) setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()));
}

function pct(sorted: number[], p: number): number {
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0);
}

const ok = (list: Iterable<number>) => [...list].filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);

function report(): void {
  const sorted = ok(through);
  const out: Record<string, number> = {
    sent,
    ok: sorted.length,
    errors,
    p50Us: pct(sorted, 50),
    p90Us: pct(sorted, 90),
    p99Us: pct(sorted, 99),
    maxUs: Math.round(sorted.at(-1) ?? 0),
  };
  if (directPort !== undefined) {
    const d = ok(direct);
    const added = ok(Array.from(through, (t, i) => t - direct[i]!));
    Object.assign(out, {
      directP50Us: pct(d, 50),
      directP99Us: pct(d, 99),
      pairs: added.length,
      addedP50Us: pct(added, 50),
      addedP99Us: pct(added, 99),
    });
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  agent.destroy();
  directAgent.destroy();
  process.exit(0);
}

// Warm the pools so connection set-up is not in the figures.
const warm: [number, string, http.Agent][] = [[port, host, agent]];
if (directPort !== undefined) warm.push([directPort, directHost, directAgent]);
let warmed = 0;
for (const [toPort, hostHeader, via] of warm) {
  for (let i = 0; i < 8; i++) {
    http.get(
      { host: "127.0.0.1", port: toPort, path: "/", headers: { host: hostHeader }, agent: via },
      (res) => {
        res.resume();
        res.on("end", () => {
          if (++warmed === 8 * warm.length) {
            start = performance.now();
            tick();
          }
        });
      },
    );
  }
}
setTimeout(() => report(), (seconds + 10) * 1000);
