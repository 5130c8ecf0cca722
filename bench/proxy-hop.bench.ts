/**
 * One-hop proxy benchmark on loopback, every peer measured in the same run (see
 * shared/TARGETS.md "Proxy"): direct client → upstream; HAProxy and Trellis as one plain hop;
 * HAProxy and Trellis as two hops with mutual TLS between them; and a Node byte relay with no
 * HTTP work, the floor any Node proxy starts from. For each: closed-loop
 * throughput (wrk -t1 -c32), requests per second per proxy core (from /proc CPU time),
 * latency at a moderate fixed rate (our open-loop client; through a proxy, each request is
 * paired with a direct one sent at the same moment, and the per-pair difference is the latency
 * the proxy added) and each proxy's RSS.
 *
 * The Trellis proxies run as production runs them: the proxy bundled into one ES module
 * (hack/bundle.ts, built into a temp dir at the start) under plain `node`, with the V8 flags
 * of the proxy image (proxy/runtime-flags.ts). RSS is sampled idle (after start-up), as the
 * peak under wrk and as the peak at the fixed rate.
 *
 * Run: bash bench/proxy-setup.sh && node --import tsx bench/proxy-hop.bench.ts
 * Env: BENCH_SECONDS (wrk duration, default 8), BENCH_RATE (req/s, default 500),
 *      BENCH_RATE_SECONDS (default 5), BENCH_ROUNDS (the whole sequence again, default 1:
 *      every round prints its own table and ratios), BENCH_ONLY (comma-separated: haproxy, trellis,
 *      node-relay, haproxy-mtls, trellis-mtls; direct always runs), BENCH_NODE_FLAGS (replaces the image's flags for the Trellis
 *      proxies; "none" for none), BENCH_NODE_ENV (replaces the image's variables for them, "K=V …" or "none"), BENCH_CPU_PROF (a directory: the Trellis proxies write
 *      --cpu-prof profiles there), BENCH_BUNDLE (a proxy.mjs built elsewhere, e.g. from
 *      another commit, instead of building one), BENCH_HEAP_REPORT=1 (the Node processes report
 *      their V8 heap spaces and RSS split after the fixed rate: bench/proxy-hop-figures.ts).
 * Node 20 against Node 24 (and V8 flags): bench/runtimes.bench.ts runs this file under each.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import net from "node:net";
import { loadavg } from "node:os";
import { join } from "node:path";
import { bundle } from "../hack/bundle.ts";
import { ensureNode } from "../hack/node-runtime.ts";
import { generateKeyPair, privateKeyToPem } from "../pki/index.ts";
import { proxyNodeEnvironment, proxyNodeFlags } from "../proxy/runtime-flags.ts";
import { FakeDestination, FakeIdentity } from "../proxy/test/control-plane-fakes.ts";
import { createMeshCa, issueFor } from "../proxy/test/mesh-pki.ts";
import { type SpawnOptions, spawnProxy, tempDir } from "../proxy/test/proxy-process.ts";
import { freePort } from "../test/cluster/free-port.ts";
import { imageEnvironment } from "../test/image-environment.ts";
import { cpuSeconds, rssAnonMb, rssMb, type Started, start, stop, wrk } from "./proxy-bench-processes.ts";
import { plainHop, type TlsFiles, tlsClientHop, tlsServerHop } from "./proxy-haproxy.ts";
import { type HeapReport, heapReportFlags, heapReports, recordRow } from "./proxy-hop-figures.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rate = Number(process.env.BENCH_RATE ?? 500);
const rateSeconds = Number(process.env.BENCH_RATE_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
const dir = tempDir("bench");
const only = process.env.BENCH_ONLY?.split(",").map((n) => n.trim());
const flagsEnv = process.env.BENCH_NODE_FLAGS;
const nodeFlags =
  flagsEnv === undefined
    ? [...proxyNodeFlags]
    : flagsEnv === "none"
      ? []
      : flagsEnv.split(/\s+/).filter(Boolean);
nodeFlags.push(...heapReportFlags());
const cpuProfDir = process.env.BENCH_CPU_PROF;
if (cpuProfDir) {
  mkdirSync(cpuProfDir, { recursive: true });
  nodeFlags.push("--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`);
}
/**
 * The upstream and the fixed-rate client run on the pinned runtime whatever runs this file, so
 * that under bench/runtimes.bench.ts only the proxies (and the relay) change runtime.
 */
const peerNode = ensureNode();
/** The upstream's port, for the direct half of the paired fixed-rate runs. */
let upstreamPort = 0;
/** How the Trellis proxies are started; `bundle` is set once the bundle is built. */
/** The environment the image sets for the proxy (proxy/runtime-flags.ts), or BENCH_NODE_ENV's. */
const proxyEnv = imageEnvironment(process.env.BENCH_NODE_ENV, proxyNodeEnvironment);
const proxyRun: SpawnOptions = { nodeFlags, env: proxyEnv };

interface Path {
  name: string;
  hops: number;
  port: number;
  host: string;
  proxyPids: number[];
  teardown: () => Promise<void>;
}

interface Row {
  name: string;
  hops: number;
  rps: number;
  perCore: number;
  wrkP99Ms: number;
  p50Us: number;
  p99Us: number;
  /** Paired with direct requests sent at the same moments (proxy-rate-client.ts): added µs per hop. */
  pairedP50Us: number | undefined;
  pairedP99Us: number | undefined;
  rssMb: number[];
  idleRssMb: number[];
  rateRssMb: number[];
  /** Anonymous RSS at the end of the fixed-rate run (without the node binary's pages). */
  rateAnonMb: number[];
  /** Where the memory is after the fixed-rate run (BENCH_HEAP_REPORT=1, Node processes). */
  heap: HeapReport[];
}

async function haproxy(cfg: string): Promise<Started> {
  const s = await start("haproxy", ["-f", cfg, "-db"], undefined);
  await new Promise((r) => setTimeout(r, 300));
  return s;
}

function tlsFiles(): TlsFiles {
  const ca = createMeshCa("bench-haproxy");
  const write = (name: string, spiffeId: string) => {
    const keys = generateKeyPair();
    const chain = issueFor(ca, keys.publicKey, {
      spiffeId,
      ipAddresses: ["127.0.0.1"],
      lifetimeMs: 86_400_000,
    });
    const file = join(dir, name);
    writeFileSync(file, chain + privateKeyToPem(keys.privateKey));
    return file;
  };
  const caPem = join(dir, "ca.pem");
  writeFileSync(caPem, ca.anchor.pem);
  return {
    caPem,
    clientPem: write("client.pem", "spiffe://bench/client"),
    serverPem: write("server.pem", "spiffe://bench/server"),
  };
}

async function haproxyPlain(upstream: number): Promise<Path> {
  const port = await freePort();
  const p = await haproxy(plainHop(dir, port, upstream));
  return {
    name: "HAProxy",
    hops: 1,
    port,
    host: `127.0.0.1:${upstream}`,
    proxyPids: [p.pid],
    teardown: () => stop(p),
  };
}

async function haproxyTls(upstream: number): Promise<Path> {
  const files = tlsFiles();
  const [serverPort, clientPort] = [await freePort(), await freePort()];
  const server = await haproxy(tlsServerHop(dir, serverPort, upstream, files));
  const client = await haproxy(tlsClientHop(dir, clientPort, serverPort, files));
  return {
    name: "HAProxy ×2, mTLS",
    hops: 2,
    port: clientPort,
    host: `127.0.0.1:${upstream}`,
    proxyPids: [client.pid, server.pid],
    teardown: async () => {
      await stop(client);
      await stop(server);
    },
  };
}

// A CPU profile is written only on an orderly exit.
const stopSignal: NodeJS.Signals = cpuProfDir ? "SIGTERM" : "SIGKILL";
const quiet = { logLevel: "info", admin: { listen: "127.0.0.1:0" } };

/** The floor for any Node proxy: a byte relay with no HTTP work (bench/proxy-node-relay.mjs). */
async function nodeRelay(upstream: number): Promise<Path> {
  const relay = await start(
    process.execPath,
    [...nodeFlags.filter((f) => !f.startsWith("--cpu-prof")), "bench/proxy-node-relay.mjs", String(upstream)],
    /port/,
    { ...process.env, ...proxyEnv },
  );
  return {
    name: "Node byte relay (floor)",
    hops: 1,
    port: (JSON.parse(relay.line) as { port: number }).port,
    host: `127.0.0.1:${upstream}`,
    proxyPids: [relay.pid],
    teardown: () => stop(relay),
  };
}

async function trellisPlain(upstream: number): Promise<Path> {
  const p = await spawnProxy({ ...quiet, outbound: { listen: "127.0.0.1:0" } }, proxyRun);
  return {
    name: "Trellis",
    hops: 1,
    port: p.ports.outbound!,
    host: `127.0.0.1:${upstream}`,
    proxyPids: [p.pid],
    teardown: async () => {
      await p.stop(stopSignal);
    },
  };
}

async function trellisMtls(upstream: number): Promise<Path> {
  const ca = createMeshCa("bench-trellis");
  const td = "spiffe://cluster.local/ns/bench/sa";
  const bundle = join(dir, "bundle.pem");
  writeFileSync(bundle, ca.anchor.pem);
  writeFileSync(join(dir, "client.token"), "tok-client");
  writeFileSync(join(dir, "server.token"), "tok-server");
  const identity = await new FakeIdentity(
    ca,
    new Map([
      ["tok-client", `${td}/client`],
      ["tok-server", `${td}/server`],
    ]),
    86_400_000,
  ).start();
  const destination = await new FakeDestination().start();
  const id = (who: string) => ({
    url: identity.url,
    tokenPath: join(dir, `${who}.token`),
    trustBundlePath: bundle,
  });
  const server = await spawnProxy(
    {
      ...quiet,
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${upstream}` },
      identity: id("server"),
    },
    proxyRun,
  );
  destination.set("web.bench:80", {
    endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
  });
  const client = await spawnProxy(
    {
      ...quiet,
      outbound: { listen: "127.0.0.1:0" },
      identity: id("client"),
      destination: { url: destination.url },
    },
    proxyRun,
  );
  return {
    name: "Trellis ×2, mTLS",
    hops: 2,
    port: client.ports.outbound!,
    host: "web.bench:80",
    proxyPids: [client.pid, server.pid],
    teardown: async () => {
      await client.stop(stopSignal);
      await server.stop(stopSignal);
      await identity.close();
      await destination.close();
    },
  };
}

/** Samples the peak RSS of `pids` while `work` runs. */
async function peakRssDuring<T>(
  pids: number[],
  work: () => Promise<T>,
): Promise<{ result: T; peak: number[] }> {
  const peak = pids.map(() => 0);
  const sample = () =>
    pids.forEach((pid, i) => {
      peak[i] = Math.max(peak[i]!, rssMb(pid));
    });
  const sampler = setInterval(sample, 100);
  try {
    const result = await work();
    sample();
    return { result, peak };
  } finally {
    clearInterval(sampler);
  }
}

/** Waits until `port` accepts connections (a loaded machine starts HAProxy slowly). */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function measure(path: Path): Promise<Row> {
  const url = `http://127.0.0.1:${path.port}/`;
  await listening(path.port);
  const idleRss = path.proxyPids.map(rssMb);
  // The latency run comes first, after a warm-up (JIT, pools, TLS sessions) lighter than the
  // closed-loop run, so RSS at the moderate rate is not inflated by that run's peak. A cold
  // proxy on a loaded machine otherwise starts the fixed rate behind and never catches up.
  await wrk(url, path.host, 3, 8);
  const rated = await peakRssDuring(path.proxyPids, () => rateRun(path));
  const rateAnon = path.proxyPids.map(rssAnonMb);
  const heap = await heapReports(path.proxyPids);
  await wrk(url, path.host, 1, 32);
  const cpu0 = path.proxyPids.map(cpuSeconds);
  const closed = await peakRssDuring(path.proxyPids, () => wrk(url, path.host, seconds, 32));
  const w = closed.result;
  const cpu = path.proxyPids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpu0[i]!, 0);
  const lat = rated.result;
  return {
    name: path.name,
    hops: path.hops,
    rps: w.rps,
    perCore: cpu > 0 ? w.requests / cpu : 0,
    wrkP99Ms: w.p99Ms,
    p50Us: lat.p50Us,
    p99Us: lat.p99Us,
    pairedP50Us: lat.addedP50Us === undefined ? undefined : lat.addedP50Us / path.hops,
    pairedP99Us: lat.addedP99Us === undefined ? undefined : lat.addedP99Us / path.hops,
    rssMb: closed.peak,
    idleRssMb: idleRss,
    rateRssMb: rated.peak,
    rateAnonMb: rateAnon,
    heap,
  };
}

interface RateResult {
  p50Us: number;
  p99Us: number;
  errors: number;
  addedP50Us?: number;
  addedP99Us?: number;
}

/** The fixed-rate run; through a proxy it is paired with direct requests to the upstream. */
async function rateRun(path: Path): Promise<RateResult> {
  const run = await start(
    peerNode,
    [
      "--import",
      "tsx",
      "bench/proxy-rate-client.ts",
      String(path.port),
      path.host,
      String(rate),
      String(rateSeconds),
      ...(path.hops > 0 ? [String(upstreamPort)] : []),
    ],
    /p99Us/,
  );
  return JSON.parse(run.line) as RateResult;
}

const mb = (list: number[]) => list.map((m) => m.toFixed(1)).join(" + ") || "—";

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
/** A latency difference with its sign: "+1,234" or "−56". */
const signed = (v: number) => `${v < 0 ? "−" : "+"}${fmt(Math.abs(v))}`;

function paired(r: Row): string {
  if (r.pairedP50Us === undefined || r.pairedP99Us === undefined) return "—";
  return `${signed(r.pairedP50Us)} / ${signed(r.pairedP99Us)} µs`;
}

function table(rows: Row[]): string {
  const direct = rows.find((r) => r.hops === 0) ?? rows[0]!;
  const lines = [
    `| path | wrk req/s | req/s per proxy core | wrk p99 ms | p50 µs @${rate}/s | p99 µs @${rate}/s | added p50 / hop | added p99 / hop | paired: added p50 / p99 per hop | RSS MB idle | RSS MB @${rate}/s | of it anonymous | RSS MB peak under wrk |`,
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const hop = r.hops || 1;
    const added = (v: number, base: number) => {
      if (r.hops === 0) return "—";
      return `${signed((v - base) / hop)} µs`;
    };
    lines.push(
      `| ${r.name} | ${fmt(r.rps)} | ${r.hops ? fmt(r.perCore) : "—"} | ${r.wrkP99Ms.toFixed(2)} | ${fmt(r.p50Us)} | ${fmt(r.p99Us)} | ${added(r.p50Us, direct.p50Us)} | ${added(r.p99Us, direct.p99Us)} | ${paired(r)} | ${mb(r.idleRssMb)} | ${mb(r.rateRssMb)} | ${mb(r.rateAnonMb)} | ${mb(r.rssMb)} |`,
    );
  }
  return lines.join("\n");
}

function ratios(rows: Row[]): string {
  const by = (n: string) => rows.find((r) => r.name === n);
  // [path, peer, the target's note for that pair]
  const pairs: [string, string, string][] = [
    ["Trellis", "HAProxy", " (target ≥ 0.5×)"],
    ["Node byte relay (floor)", "HAProxy", ""],
    ["Trellis", "Node byte relay (floor)", ""],
    ["Trellis ×2, mTLS", "HAProxy ×2, mTLS", " (target ≥ 0.5×)"],
  ];
  return pairs
    .map(([t, h, target]) => {
      const a = by(t);
      const b = by(h);
      if (!a || !b) return "";
      return `${t} / ${h}: throughput ${(a.rps / b.rps).toFixed(2)}×, per core ${(a.perCore / b.perCore).toFixed(2)}×${target}`;
    })
    .filter(Boolean)
    .join("\n");
}

async function main(): Promise<void> {
  process.stderr.write(
    `load average at the start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}\n`,
  );
  if (process.env.BENCH_BUNDLE) proxyRun.bundle = process.env.BENCH_BUNDLE;
  else {
    const dist = join(dir, "dist");
    await bundle(dist);
    proxyRun.bundle = join(dist, "proxy.mjs");
  }
  process.stderr.write(
    `Trellis proxies: ${Object.entries(proxyEnv)
      .map(([k, v]) => `${k}=${v} `)
      .join(
        "",
      )}${process.execPath} ${[...nodeFlags, proxyRun.bundle].join(" ")}; ${rounds} round(s); upstream and client: ${peerNode}\n`,
  );
  const upstream = await start(peerNode, ["--import", "tsx", "bench/proxy-upstream.ts"], /port/);
  const up = (JSON.parse(upstream.line) as { port: number }).port;
  upstreamPort = up;
  // The upstream is itself a `node --import tsx` process: its idle RSS is the runtime's floor.
  const tsxFloorMb = rssMb(upstream.pid);
  const out: string[] = [];
  const all: [string, () => Promise<Path>][] = [
    [
      "direct",
      async () => ({
        name: "direct",
        hops: 0,
        port: up,
        host: `127.0.0.1:${up}`,
        proxyPids: [],
        teardown: async () => {},
      }),
    ],
    ["haproxy", () => haproxyPlain(up)],
    ["trellis", () => trellisPlain(up)],
    ["node-relay", () => nodeRelay(up)],
    ["haproxy-mtls", () => haproxyTls(up)],
    ["trellis-mtls", () => trellisMtls(up)],
  ];
  const chosen = all.filter(([name]) => name === "direct" || !only || only.includes(name));
  try {
    for (let round = 1; round <= rounds; round++) {
      const rows: Row[] = [];
      for (const [name, make] of chosen) {
        process.stderr.write(`round ${round}: measuring ${name}…\n`);
        const path = await make();
        try {
          rows.push(await measure(path));
          recordRow(rows.at(-1)!);
        } finally {
          await path.teardown();
        }
      }
      const text = `round ${round}\n${table(rows)}\n\n${ratios(rows)}\n`;
      process.stderr.write(text);
      out.push(text);
    }
  } finally {
    await stop(upstream);
  }
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  process.stdout.write(
    `\n${out.join("\n")}\nload average at the end: ${load} (2 cores)\nRSS of an idle \`node --import tsx\` process (the upstream, before load): ${tsxFloorMb.toFixed(1)} MB\n`,
  );
  process.exit(0);
}

await main();
