// The proxy's memory over time, not only at its peak: RSS and anonymous RSS sampled every 50 ms
// while one plain hop carries a steady 500 req/s, once from a fresh start and once after a
// 5-second wrk burst (-c32) — the pattern of a sidecar whose service had a spike. Compares, in
// one run with the order alternating between rounds: Node 20.20.2 as Trellis shipped it
// (`--max-semi-space-size=1`), the pinned Node 24 with the image's flags but without the memory
// release (`limits.memoryReleaseIntervalMs: 0`), and Node 24 as the image runs it
// (proxy/runtime-flags.ts, the release every second: proxy/memory-release.ts).
//
// Run: bash bench/proxy-setup.sh (wrk), then bash hack/node.sh --import tsx bench/proxy-memory.bench.ts
// Env: BENCH_ROUNDS (2), BENCH_SECONDS (20: the steady part; samples skip its first 5 s),
//   BENCH_RATE (500 req/s), BENCH_BUNDLE (a proxy.mjs built elsewhere instead of building one).
// The upstream and the load generator are this process (the pinned runtime) in every variant.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { bundle } from "../hack/bundle.ts";
import { proxyNodeEnvironment, proxyNodeFlags } from "../proxy/runtime-flags.ts";
import { freePort } from "../test/cluster/free-port.ts";
import { comparedRuntimes } from "./node-runtimes.ts";
import { cpuSeconds, rssAnonMb, rssMb } from "./proxy-bench-processes.ts";

const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const rate = Number(process.env.BENCH_RATE ?? 500);
const sampleFromMs = 5_000;

interface Variant {
  label: string;
  node: string;
  flags: readonly string[];
  env: Record<string, string>;
}

const runtimes = comparedRuntimes();
const node20 = runtimes.get("20")!;
const node24 = runtimes.get("24")!;
const variants: Variant[] = [
  {
    label: `Node ${node20.version} as shipped`,
    node: node20.node,
    flags: ["--max-semi-space-size=1"],
    env: { TRELLIS_PROXY_MEMORY_RELEASE_INTERVAL_MS: "0" },
  },
  {
    label: `Node ${node24.version}, image flags, no release`,
    node: node24.node,
    flags: proxyNodeFlags,
    env: { ...proxyNodeEnvironment, TRELLIS_PROXY_MEMORY_RELEASE_INTERVAL_MS: "0" },
  },
  {
    label: `Node ${node24.version} as the image runs it`,
    node: node24.node,
    flags: proxyNodeFlags,
    env: { ...proxyNodeEnvironment },
  },
];

/** RSS and anonymous RSS of a process, MB. */
const memory = (pid: number) => ({ rss: rssMb(pid), anon: rssAnonMb(pid) });

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

interface Sample {
  idle: { rss: number; anon: number };
  afterBurst?: { rss: number; anon: number };
  rssP50: number;
  anonP50: number;
  rssMax: number;
  cpuUsPerRequest: number;
  failed: number;
}

async function measure(
  v: Variant,
  proxyBundle: string,
  upstreamPort: number,
  burst: boolean,
): Promise<Sample> {
  const port = await freePort();
  const proxy: ChildProcess = spawn(v.node, [...v.flags, proxyBundle], {
    env: {
      PATH: process.env.PATH ?? "",
      ...v.env,
      TRELLIS_PROXY_OUTBOUND_LISTEN: `127.0.0.1:${port}`,
      TRELLIS_PROXY_ADMIN_LISTEN: "127.0.0.1:0",
      TRELLIS_PROXY_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const pid = proxy.pid!;
  try {
    await delay(1_500);
    const idle = memory(pid);
    const host = `127.0.0.1:${upstreamPort}`;
    let afterBurst: Sample["afterBurst"];
    if (burst) {
      await new Promise((resolve) =>
        spawn("wrk", ["-t1", "-c32", "-d5s", "-H", `Host: ${host}`, `http://127.0.0.1:${port}/`], {
          stdio: "ignore",
        }).once("exit", resolve),
      );
      await delay(1_000);
      afterBurst = memory(pid);
    }
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    let done = 0;
    let failed = 0;
    const samples: { rss: number; anon: number }[] = [];
    const started = Date.now();
    const cpuBefore = cpuSeconds(pid);
    // Every 10 ms a tenth of a hundredth of the rate: 500 req/s as 5 requests per tick.
    const load = setInterval(() => {
      for (let i = 0; i < rate / 100; i++) {
        const req = http.request({ host: "127.0.0.1", port, path: "/", headers: { host }, agent }, (res) => {
          res.resume();
          res.once("end", () => done++);
        });
        req.once("error", () => failed++);
        req.end();
      }
    }, 10);
    const sampler = setInterval(() => {
      if (Date.now() - started >= sampleFromMs) samples.push(memory(pid));
    }, 50);
    await delay(seconds * 1_000);
    clearInterval(load);
    clearInterval(sampler);
    const cpu = cpuSeconds(pid) - cpuBefore;
    agent.destroy();
    return {
      idle,
      afterBurst,
      rssP50: quantile(
        samples.map((s) => s.rss),
        0.5,
      ),
      anonP50: quantile(
        samples.map((s) => s.anon),
        0.5,
      ),
      rssMax: Math.max(...samples.map((s) => s.rss)),
      cpuUsPerRequest: (cpu * 1e6) / Math.max(done, 1),
      failed,
    };
  } finally {
    proxy.kill("SIGKILL");
    await new Promise((r) => (proxy.exitCode === null ? proxy.once("exit", r) : r(undefined)));
  }
}

const dir = mkdtempSync(join(tmpdir(), "trellis-proxy-memory-"));
try {
  let proxyBundle = process.env.BENCH_BUNDLE;
  if (!proxyBundle) {
    await bundle(join(dir, "dist"));
    proxyBundle = join(dir, "dist", "proxy.mjs");
  }
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.once("end", () => res.end("hello world"));
  });
  const upstreamPort = await freePort();
  await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", r));
  process.stderr.write(
    `proxy-memory: ${cpus()[0]?.model ?? "?"} × ${cpus().length}; load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}; ${rounds} rounds, ${seconds} s at ${rate} req/s, samples after ${sampleFromMs / 1000} s\n`,
  );
  const results = new Map<string, { steady: Sample[]; burst: Sample[] }>(
    variants.map((v) => [v.label, { steady: [], burst: [] }]),
  );
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      for (const burst of [false, true]) {
        const s = await measure(v, proxyBundle, upstreamPort, burst);
        results.get(v.label)![burst ? "burst" : "steady"].push(s);
        process.stderr.write(
          `round ${round + 1}: ${v.label}${burst ? ", after a burst" : ""}: ${JSON.stringify(s)}\n`,
        );
      }
    }
  }
  upstream.close();
  const mb = (xs: number[]) => xs.map((x) => x.toFixed(1)).join(" / ");
  const lines = [
    `| variant (MB; each cell round 1 / round 2 …) | RSS idle | anonymous idle | steady ${rate} req/s: RSS p50 | anonymous p50 | RSS max | after a burst: RSS | then at ${rate} req/s: RSS p50 | anonymous p50 | RSS max | CPU per request, steady (µs) |`,
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const v of variants) {
    const { steady, burst } = results.get(v.label)!;
    lines.push(
      `| ${v.label} | ${mb(steady.map((s) => s.idle.rss))} | ${mb(steady.map((s) => s.idle.anon))} | ${mb(steady.map((s) => s.rssP50))} | ${mb(steady.map((s) => s.anonP50))} | ${mb(steady.map((s) => s.rssMax))} | ${mb(burst.map((s) => s.afterBurst!.rss))} | ${mb(burst.map((s) => s.rssP50))} | ${mb(burst.map((s) => s.anonP50))} | ${mb(burst.map((s) => s.rssMax))} | ${mb(steady.map((s) => s.cpuUsPerRequest))} |`,
    );
  }
  const failed = [...results.values()]
    .flatMap((r) => [...r.steady, ...r.burst])
    .reduce((n, s) => n + s.failed, 0);
  process.stdout.write(
    `\n${lines.join("\n")}\n\nfailed requests: ${failed}; load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
