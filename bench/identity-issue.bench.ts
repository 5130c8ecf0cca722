// Benchmark: CSRs signed per second by the identity service, on one core.
// (a) the signing path alone — verify a P-256 CSR, check its identity, issue a 24 h leaf, build the
//     chain — over 300 distinct CSRs in rotation, against peers measured in the same run, round by
//     round: the pki fast path alone, @peculiar/x509 on WebCrypto, Go crypto/x509 (GOMAXPROCS=1,
//     when Go is installed) and node:crypto's own verify + sign limit.
// (b) end to end through the identity program: HTTP/2 over TLS, concurrent streams, real
//     TokenReviews against a local kube-apiserver, cached for the tokens' lifetime; beside it, the
//     same load on two peer servers with the same TLS and HTTP/2 settings: pki signing without
//     authentication or checks, and the transport alone (bench/identity-transport-floor.ts).
// Run: node --import tsx bench/identity-issue.bench.ts
//   IDENTITY_BENCH_SECONDS (per workload and round, default 1), IDENTITY_BENCH_ROUNDS (3),
//   IDENTITY_BENCH_E2E_SECONDS (5), IDENTITY_BENCH_E2E=0 to skip part (b).
import { X509Certificate } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { recordFigure } from "./bench-figures.ts";
import {
  checkOneAnswer,
  closedLoop,
  type LoadSample,
  startEndpointRig,
  startTransportFloor,
} from "./identity-endpoint-load.ts";
import { identitySigningWorkload } from "./identity-signing.ts";
import { formatTable, median, type Sample } from "./pki-measure.ts";
import { buildGoPeer } from "./pki-peer-go.ts";
import { peculiarWorkloads } from "./pki-peer-peculiar.ts";
import { ecdsaCsrs, nodeLimitWorkloads, trellisWorkloads, type Workload } from "./pki-workloads.ts";

const SECONDS = Number(process.env.IDENTITY_BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.IDENTITY_BENCH_ROUNDS ?? 3);
const E2E_SECONDS = Number(process.env.IDENTITY_BENCH_E2E_SECONDS ?? 5);
const SIGNING_TARGET = 8000;
const ENDPOINT_TARGET = 3000;
const LOAD = { connections: 4, streams: 16 };

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

interface Row {
  label: string;
  samples: Sample[];
}

async function checkSample(w: Workload): Promise<void> {
  const { der, issuerDer } = await w.sample();
  const cert = new X509Certificate(der);
  const issuer = new X509Certificate(issuerDer);
  const lifetime = new Date(cert.validTo).getTime() - Date.now();
  const ok = cert.checkIssued(issuer) && cert.verify(issuer.publicKey) && !cert.ca;
  if (
    !ok ||
    Math.abs(lifetime - 86_400_000) > 120_000 ||
    !(cert.subjectAltName ?? "").startsWith("URI:spiffe://")
  ) {
    throw new Error(`${w.peer} issued a certificate that does not pass the sample check`);
  }
}

async function signingPath(): Promise<void> {
  const csrs = ecdsaCsrs();
  const go = buildGoPeer();
  if (typeof go === "string") console.log(`Go peer skipped: ${go}`);
  else console.log(go.version);
  const peers = (await peculiarWorkloads(csrs)).filter((w) => w.work === "csr");
  const workloads = [
    identitySigningWorkload(csrs),
    ...trellisWorkloads(csrs).filter((w) => w.work === "csr"),
    ...peers,
    ...(typeof go === "string" ? [] : go.workloads.filter((w) => w.work === "csr")),
  ];
  for (const w of workloads) await checkSample(w);
  const limits = nodeLimitWorkloads(csrs);
  const rows: Row[] = [
    ...workloads.map((w) => ({ label: w.note ? `${w.peer} — ${w.note}` : w.peer, samples: [] as Sample[] })),
    ...limits.map((l) => ({ label: `limit: ${l.name}`, samples: [] as Sample[] })),
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, w] of workloads.entries()) rows[i]?.samples.push(await w.run(SECONDS));
    for (const [i, l] of limits.entries()) rows[workloads.length + i]?.samples.push(l.run(SECONDS));
    process.stderr.write(`signing path: round ${round + 1}/${ROUNDS} done\n`);
  }
  if (typeof go !== "string") go.cleanup();
  reportSigning(rows);
}

function reportSigning(rows: Row[]): void {
  const rate = (r: Row | undefined) => median(r?.samples.map((s) => s.perCpuSecond) ?? []);
  const trellis = rate(rows[0]);
  console.log("\n(a) signing path, one core, 300 distinct CSRs in rotation (medians)");
  console.log(
    formatTable(
      ["workload", "certs per CPU-s", "min–max", "CPU/wall", "identity ÷ row"],
      rows.map((r, i) => {
        const rates = r.samples.map((s) => s.perCpuSecond);
        return [
          r.label,
          fmt(rate(r)),
          `${fmt(Math.min(...rates))}–${fmt(Math.max(...rates))}`,
          median(r.samples.map((s) => s.cpuPerWall)).toFixed(2),
          i === 0 ? "" : `${(trellis / rate(r)).toFixed(2)}×`,
        ];
      }),
    ),
  );
  const goRow = rows.find((r) => r.label.startsWith("Go"));
  for (const r of rows) recordFigure(`signing: ${r.label}`, rate(r), "certs per CPU-s", "higher");
  if (goRow) recordFigure("signing: identity path ÷ Go crypto/x509", trellis / rate(goRow), "×", "higher");
  const vsGo = goRow ? `, ${(trellis / rate(goRow)).toFixed(2)}× Go (target ≥ 1.5×)` : "";
  const met = trellis >= SIGNING_TARGET && (!goRow || trellis >= 1.5 * rate(goRow));
  console.log(
    `target ≥ ${fmt(SIGNING_TARGET)}/s per core: ${fmt(trellis)}/s = ${(trellis / SIGNING_TARGET).toFixed(2)}× target${vsGo} → ${met ? "met" : "NOT met"}`,
  );
}

function loadRow(label: string, samples: LoadSample[]): string[] {
  const perCore = samples.map((s) => s.requests / s.serverCpuSeconds);
  const errors = samples.reduce((n, s) => n + s.errors, 0);
  return [
    label,
    fmt(median(perCore)),
    `${fmt(Math.min(...perCore))}–${fmt(Math.max(...perCore))}`,
    fmt(median(samples.map((s) => s.requests / s.wallSeconds))),
    median(samples.map((s) => s.serverCpuSeconds / s.wallSeconds)).toFixed(2),
    `${errors}${errors > 0 ? ` (${samples.find((s) => s.firstError)?.firstError})` : ""}`,
  ];
}

async function endToEnd(): Promise<void> {
  console.log("\n(b) end to end: identity program, HTTP/2 + TLS, real TokenReviews (cached), loopback");
  const rig = await startEndpointRig(20, 15);
  const answer = await checkOneAnswer(rig);
  const peers = [
    await startTransportFloor(rig, answer, "sign"),
    await startTransportFloor(rig, answer, "fixed"),
  ];
  const targets = [rig, ...peers.map((p) => p.target)];
  const labels = [
    "Trellis identity endpoint (TokenReview cache, checks, signing)",
    "same transport + pki parseCsr/issueLeaf, no auth or checks",
    "same transport alone, fixed answer",
  ];
  try {
    for (const t of targets) await closedLoop(t, { ...LOAD, seconds: 1 }); // warm-up: JIT, TLS, token cache
    const samples: LoadSample[][] = targets.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, t] of targets.entries())
        samples[i]?.push(await closedLoop(t, { ...LOAD, seconds: E2E_SECONDS }));
      process.stderr.write(`end to end: round ${round + 1}/${ROUNDS} done\n`);
    }
    const metrics = await rig.metrics();
    const reviews = /trellis_identity_token_reviews_total\{result="authenticated"\} (\d+)/.exec(metrics)?.[1];
    console.log(
      formatTable(
        [
          "server (4 connections × 16 streams)",
          "req per CPU-s",
          "min–max",
          "req/s wall",
          "server CPU/wall",
          "errors",
        ],
        labels.map((label, i) => loadRow(label, samples[i] ?? [])),
      ),
    );
    const perCore = (i: number) => median((samples[i] ?? []).map((s) => s.requests / s.serverCpuSeconds));
    for (const [i, label] of labels.entries())
      recordFigure(`endpoint: ${label}`, perCore(i), "req per server CPU-s", "higher");
    const identity = samples[0] ?? [];
    const errors = identity.reduce((n, s) => n + s.errors, 0);
    console.log(
      `${fmt(identity.reduce((n, s) => n + s.requests, 0))} certificates issued; TokenReviews sent for 20 tokens: ${reviews ?? "?"}`,
    );
    console.log(
      `identity ÷ transport + signing: ${(perCore(0) / perCore(1)).toFixed(2)}; identity ÷ transport alone: ${(perCore(0) / perCore(2)).toFixed(2)}`,
    );
    console.log(
      `target ≥ ${fmt(ENDPOINT_TARGET)}/s per core: ${fmt(perCore(0))}/s = ${(perCore(0) / ENDPOINT_TARGET).toFixed(2)}× target → ${perCore(0) >= ENDPOINT_TARGET && errors === 0 ? "met" : "NOT met"}`,
    );
  } finally {
    for (const p of peers) await p.stop();
    await rig.stop();
  }
}

console.log(
  `identity benchmark: ${ROUNDS} rounds; node ${process.version}, OpenSSL ${process.versions.openssl}`,
);
console.log(
  `${cpus()[0]?.model ?? "?"} × ${cpus().length}; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
await signingPath();
if (process.env.IDENTITY_BENCH_E2E !== "0") await endToEnd();
console.log(
  `load average at end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
