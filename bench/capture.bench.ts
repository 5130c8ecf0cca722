/**
 * What transparent capture costs: the same hop through the same proxy process (bundled, with
 * the image's flags, UID 2102) with and without nat redirection, inside network namespaces of
 * the benchmark's own (proxy/test/netns-lab.ts), and the cost of the original-destination read.
 *
 * Paths, one client in pod `a` (meshed rules), the upstream an HTTP server in pod `s`:
 *   direct     — the client as UID 2102, which the rules never redirect: no proxy at all
 *   explicit   — the client dials the proxy itself (127.0.0.1:4140, Host = upstream): no nat
 *   captured   — the client dials the upstream; nat REDIRECT sends it to the proxy, which reads
 *                SO_ORIGINAL_DST and routes by it
 * Each path: BENCH_REQUESTS sequential requests on a new connection each (what capture adds is
 * per connection), then on one kept-alive connection (nothing should be added per request).
 * Proxy CPU from /proc. The read itself: ns per getsockopt through the addon on a redirected
 * socket, and its ratio to one explicit hop (per connection).
 *
 *   node --import tsx bench/capture.bench.ts      (root; BENCH_ROUNDS=2, BENCH_REQUESTS=2000)
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundle } from "../hack/bundle.ts";
import { proxyNodeFlags } from "../proxy/runtime-flags.ts";
import { NetnsLab, PROXY_UID, startIn, unavailable } from "../proxy/test/netns-lab.ts";
import { cpuSeconds } from "./proxy-bench-processes.ts";

const why = unavailable();
if (why) {
  process.stderr.write(`capture benchmark: ${why}\n`);
  process.exit(1);
}
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const requests = Number(process.env.BENCH_REQUESTS ?? 2000);
const repo = new URL("..", import.meta.url).pathname;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const lab = new NetnsLab();
try {
  const a = lab.addPod("a", true);
  const s = lab.addPod("s", false);
  await s.agent(["--http", "8080"]);
  const upstream = `http://${s.ip}:8080/`;
  const inA = (argv: string[], uid?: number) =>
    execFileSync(
      "ip",
      [
        "netns",
        "exec",
        a.ns,
        ...(uid === undefined ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"]),
        process.execPath,
        "--import",
        "tsx",
        "bench/capture-load.ts",
        ...argv,
      ],
      { cwd: repo, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
    );

  // The read alone, before the proxy takes port 4140.
  const reads = [0, 1, 2].map(
    () => JSON.parse(inA(["orig-dst", s.ip, "8080", "200000"])) as { nsPerRead: number; found: boolean },
  );
  if (!reads.every((r) => r.found)) throw new Error("the redirected socket had no original destination");
  const nsPerRead = Math.min(...reads.map((r) => r.nsPerRead));

  const dist = mkdtempSync(join(tmpdir(), "trellis-capture-bench-"));
  await bundle(dist);
  chmodSync(dist, 0o755); // the proxy runs as UID 2102
  const config = join(lab.dir, "bench-proxy.json");
  writeFileSync(
    config,
    JSON.stringify({
      logLevel: "info",
      capture: true,
      admin: { listen: "127.0.0.1:4191" },
      outbound: { listen: "127.0.0.1:4140" },
    }),
    { mode: 0o644 },
  );
  const proxy = lab.track(
    await startIn(a.ns, [process.execPath, ...proxyNodeFlags, join(dist, "proxy.mjs")], {
      uid: PROXY_UID,
      env: { TRELLIS_PROXY_CONFIG: config },
      readyPattern: /proxy started/,
    }),
  );

  const load = (kind: "new" | "keep", targets: string[], uid?: number): number[][] =>
    (JSON.parse(inA(["requests", String(requests), kind, ...targets], uid)) as { latenciesUs: number[][] })
      .latenciesUs;
  const explicitTarget = ["http://127.0.0.1:4140/", `${s.ip}:8080`];
  const capturedTarget = [upstream, "-"];
  const stats = (xs: number[]) => {
    const sorted = [...xs].sort((x, y) => x - y);
    return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) };
  };
  const pairedP50 = (a: number[], b: number[]) => stats(a.map((x, i) => x - b[i]!)).p50;
  const cpuPerConnection = (targets: string[]) => {
    const before = cpuSeconds(proxy.pid);
    load("new", targets);
    return ((cpuSeconds(proxy.pid) - before) * 1e6) / requests;
  };
  for (let round = 1; round <= rounds; round++) {
    const [direct = []] = load("new", [upstream, "-"], PROXY_UID);
    const [directKeep = []] = load("keep", [upstream, "-"], PROXY_UID);
    const [explicit = [], captured = []] = load("new", [...explicitTarget, ...capturedTarget]);
    const [explicitKeep = [], capturedKeep = []] = load("keep", [...explicitTarget, ...capturedTarget]);
    const cpuCaptured = cpuPerConnection(capturedTarget);
    const cpuExplicit = cpuPerConnection(explicitTarget);
    process.stdout.write(
      `\nround ${round} (${requests} requests per path; explicit and captured interleaved)\n`,
    );
    process.stdout.write(
      "| path | new connection p50 µs | p99 µs | kept-alive p50 µs | p99 µs | proxy CPU µs per connection |\n|---|---|---|---|---|---|\n",
    );
    const row = (name: string, fresh: number[], keep: number[], cpu: string) => {
      const f = stats(fresh);
      const k = stats(keep);
      process.stdout.write(
        `| ${name} | ${f.p50.toFixed(0)} | ${f.p99.toFixed(0)} | ${k.p50.toFixed(0)} | ${k.p99.toFixed(0)} | ${cpu} |\n`,
      );
    };
    row("direct (no proxy)", direct, directKeep, "—");
    row("explicit (no nat)", explicit, explicitKeep, cpuExplicit.toFixed(0));
    row("captured (nat + SO_ORIGINAL_DST)", captured, capturedKeep, cpuCaptured.toFixed(0));
    const explicitP50 = stats(explicit).p50;
    process.stdout.write(
      `capture adds, paired p50 of (captured − explicit): ${pairedP50(captured, explicit).toFixed(0)} µs per new connection ` +
        `(target ≤ 50 µs), ${pairedP50(capturedKeep, explicitKeep).toFixed(0)} µs per kept-alive request; ` +
        `proxy CPU per connection ${cpuCaptured.toFixed(0)} vs ${cpuExplicit.toFixed(0)} µs (${(cpuCaptured / cpuExplicit).toFixed(2)}×)\n`,
    );
    process.stdout.write(
      `SO_ORIGINAL_DST read: ${nsPerRead.toFixed(0)} ns = ${((nsPerRead / 1000 / explicitP50) * 100).toFixed(3)}% of one explicit hop on a new connection (p50 ${explicitP50.toFixed(0)} µs)\n`,
    );
  }
  process.stdout.write(
    `\nload average at the end: ${execFileSync("cat", ["/proc/loadavg"], { encoding: "utf8" }).trim()}\n`,
  );
} finally {
  await lab.close();
}
