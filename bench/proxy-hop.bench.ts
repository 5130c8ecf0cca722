/**
 * One-hop proxy benchmark on loopback, every peer measured in the same run (see
 * shared/TARGETS.md "Proxy"): direct client → upstream; HAProxy and Trellis as one plain hop;
 * HAProxy and Trellis as two hops with mutual TLS between them. For each: closed-loop
 * throughput (wrk -t1 -c32), requests per second per proxy core (from /proc CPU time),
 * latency at a moderate fixed rate (our open-loop client) and each proxy's RSS.
 *
 * Run: bash bench/proxy-setup.sh && node --import tsx bench/proxy-hop.bench.ts
 * Env: BENCH_SECONDS (wrk duration, default 8), BENCH_RATE (req/s, default 500),
 *      BENCH_RATE_SECONDS (default 5).
 */
import { writeFileSync } from "node:fs";
import net from "node:net";
import { loadavg } from "node:os";
import { join } from "node:path";
import { generateKeyPair, privateKeyToPem } from "../pki/index.ts";
import { FakeDestination, FakeIdentity } from "../proxy/test/control-plane-fakes.ts";
import { createMeshCa, issueFor } from "../proxy/test/mesh-pki.ts";
import { spawnProxy, tempDir } from "../proxy/test/proxy-process.ts";
import { cpuSeconds, rssMb, type Started, start, stop, wrk } from "./proxy-bench-processes.ts";
import { plainHop, type TlsFiles, tlsClientHop, tlsServerHop } from "./proxy-haproxy.ts";

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const rate = Number(process.env.BENCH_RATE ?? 500);
const rateSeconds = Number(process.env.BENCH_RATE_SECONDS ?? 5);
const dir = tempDir("bench");

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
  rssMb: number[];
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
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

const quiet = { logLevel: "info", admin: { listen: "127.0.0.1:0" } };

async function trellisPlain(upstream: number): Promise<Path> {
  const p = await spawnProxy({ ...quiet, outbound: { listen: "127.0.0.1:0" } });
  return {
    name: "Trellis",
    hops: 1,
    port: p.ports.outbound!,
    host: `127.0.0.1:${upstream}`,
    proxyPids: [p.pid],
    teardown: async () => {
      await p.stop("SIGKILL");
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
  const server = await spawnProxy({
    ...quiet,
    inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${upstream}` },
    identity: id("server"),
  });
  destination.set("web.bench:80", {
    endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
  });
  const client = await spawnProxy({
    ...quiet,
    outbound: { listen: "127.0.0.1:0" },
    identity: id("client"),
    destination: { url: destination.url },
  });
  return {
    name: "Trellis ×2, mTLS",
    hops: 2,
    port: client.ports.outbound!,
    host: "web.bench:80",
    proxyPids: [client.pid, server.pid],
    teardown: async () => {
      await client.stop("SIGKILL");
      await server.stop("SIGKILL");
      await identity.close();
      await destination.close();
    },
  };
}

async function measure(path: Path): Promise<Row> {
  const url = `http://127.0.0.1:${path.port}/`;
  await wrk(url, path.host, 1, 32);
  const cpu0 = path.proxyPids.map(cpuSeconds);
  const peakRss = path.proxyPids.map(() => 0);
  const sampler = setInterval(() => {
    path.proxyPids.forEach((pid, i) => {
      peakRss[i] = Math.max(peakRss[i]!, rssMb(pid));
    });
  }, 250);
  const w = await wrk(url, path.host, seconds, 32);
  clearInterval(sampler);
  const cpu = path.proxyPids.reduce((sum, pid, i) => sum + cpuSeconds(pid) - cpu0[i]!, 0);
  const rateRun = await start(
    process.execPath,
    [
      "--import",
      "tsx",
      "bench/proxy-rate-client.ts",
      String(path.port),
      path.host,
      String(rate),
      String(rateSeconds),
    ],
    /p99Us/,
  );
  const lat = JSON.parse(rateRun.line) as { p50Us: number; p99Us: number; errors: number };
  return {
    name: path.name,
    hops: path.hops,
    rps: w.rps,
    perCore: cpu > 0 ? w.requests / cpu : 0,
    wrkP99Ms: w.p99Ms,
    p50Us: lat.p50Us,
    p99Us: lat.p99Us,
    rssMb: peakRss,
  };
}

function table(rows: Row[]): string {
  const direct = rows[0]!;
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const lines = [
    `| path | wrk req/s | req/s per proxy core | wrk p99 ms | p50 µs @${rate}/s | p99 µs @${rate}/s | added p50 / hop | added p99 / hop | RSS MB per proxy |`,
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const hop = r.hops || 1;
    const added = (v: number, base: number) => {
      if (r.hops === 0) return "—";
      const d = (v - base) / hop;
      return `${d < 0 ? "−" : "+"}${fmt(Math.abs(d))} µs`;
    };
    lines.push(
      `| ${r.name} | ${fmt(r.rps)} | ${r.hops ? fmt(r.perCore) : "—"} | ${r.wrkP99Ms.toFixed(2)} | ${fmt(r.p50Us)} | ${fmt(r.p99Us)} | ${added(r.p50Us, direct.p50Us)} | ${added(r.p99Us, direct.p99Us)} | ${r.rssMb.map((m) => m.toFixed(1)).join(" + ") || "—"} |`,
    );
  }
  return lines.join("\n");
}

function ratios(rows: Row[]): string {
  const by = (n: string) => rows.find((r) => r.name === n);
  const pairs: [string, string][] = [
    ["Trellis", "HAProxy"],
    ["Trellis ×2, mTLS", "HAProxy ×2, mTLS"],
  ];
  return pairs
    .map(([t, h]) => {
      const a = by(t);
      const b = by(h);
      if (!a || !b) return "";
      return `${t} / ${h}: throughput ${(a.rps / b.rps).toFixed(2)}×, per core ${(a.perCore / b.perCore).toFixed(2)}× (target ≥ 0.5×)`;
    })
    .join("\n");
}

async function main(): Promise<void> {
  process.stderr.write(
    `load average at the start: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}\n`,
  );
  const upstream = await start(process.execPath, ["--import", "tsx", "bench/proxy-upstream.ts"], /port/);
  const up = (JSON.parse(upstream.line) as { port: number }).port;
  // The upstream is itself a `node --import tsx` process: its idle RSS is the runtime's floor.
  const tsxFloorMb = rssMb(upstream.pid);
  const rows: Row[] = [];
  const paths: (() => Promise<Path>)[] = [
    async () => ({
      name: "direct",
      hops: 0,
      port: up,
      host: `127.0.0.1:${up}`,
      proxyPids: [],
      teardown: async () => {},
    }),
    () => haproxyPlain(up),
    () => trellisPlain(up),
    () => haproxyTls(up),
    () => trellisMtls(up),
  ];
  try {
    for (const make of paths) {
      const path = await make();
      try {
        process.stderr.write(`measuring ${path.name}…\n`);
        rows.push(await measure(path));
      } finally {
        await path.teardown();
      }
    }
  } finally {
    await stop(upstream);
  }
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  process.stdout.write(
    `\n${table(rows)}\n\n${ratios(rows)}\nload average at the end: ${load} (2 cores)\nRSS of an idle \`node --import tsx\` process (the upstream, before load): ${tsxFloorMb.toFixed(1)} MB\n`,
  );
  process.exit(0);
}

await main();
