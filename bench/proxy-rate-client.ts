/**
 * Constant-rate (open-loop) HTTP/1.1 load generator for latency: sends `rate` requests per
 * second for `seconds` over a pool of keep-alive connections and measures each request from
 * its scheduled start, so a stall is charged to every request it delays (no coordinated
 * omission). Prints {sent, ok, errors, p50Us, p90Us, p99Us, maxUs} as JSON.
 *
 * Usage: node --import tsx bench/proxy-rate-client.ts <port> <host-header> <rate> <seconds>
 */
import http from "node:http";

const [port, host, rate, seconds] = [
  Number(process.argv[2]),
  process.argv[3]!,
  Number(process.argv[4]),
  Number(process.argv[5]),
];
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const latencies: number[] = [];
let errors = 0;
let sent = 0;
const total = Math.round(rate * seconds);
const intervalMs = 1000 / rate;
let start = 0;

function fire(scheduledAt: number): void {
  sent++;
  const req = http.request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (res) => {
    res.resume();
    res.on("end", () => {
      if (res.statusCode === 200) latencies.push((performance.now() - scheduledAt) * 1000);
      else errors++;
      if (latencies.length + errors === total) report();
    });
  });
  req.on("error", () => {
    errors++;
    if (latencies.length + errors === total) report();
  });
  req.end();
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

function report(): void {
  const sorted = latencies.sort((a, b) => a - b);
  const out = {
    sent,
    ok: sorted.length,
    errors,
    p50Us: pct(sorted, 50),
    p90Us: pct(sorted, 90),
    p99Us: pct(sorted, 99),
    maxUs: Math.round(sorted.at(-1) ?? 0),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  agent.destroy();
  process.exit(0);
}

// Warm the pool so connection set-up is not in the figures.
let warmed = 0;
for (let i = 0; i < 8; i++) {
  http.get({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (res) => {
    res.resume();
    res.on("end", () => {
      if (++warmed === 8) {
        start = performance.now();
        tick();
      }
    });
  });
}
setTimeout(() => report(), (seconds + 10) * 1000);
