// Benchmark: certificates issued per second on one core — verify a P-256 CSR's signature, then
// issue a 24 h leaf signed by an ECDSA P-256 issuer, 300 distinct CSRs in rotation — for the
// Trellis pki fast path and its peers measured in the same run, plus key generation + issuance.
// Run: node --import tsx bench/pki-issue.bench.ts   (PKI_BENCH_SECONDS, PKI_BENCH_ROUNDS to tune)
// Peers run interleaved, round by round, and the table shows medians, because the machine is shared.

import { X509Certificate } from "node:crypto";
import { cpus, loadavg } from "node:os";
import { recordFigure } from "./bench-figures.ts";
import { formatTable, median, type Sample } from "./pki-measure.ts";
import { forgeWorkloads } from "./pki-peer-forge.ts";
import { buildGoPeer } from "./pki-peer-go.ts";
import { peculiarWorkloads } from "./pki-peer-peculiar.ts";
import {
  ecdsaCsrs,
  nodeLimitWorkloads,
  trellisBreakdown,
  trellisWorkloads,
  type Workload,
} from "./pki-workloads.ts";

const SECONDS = Number(process.env.PKI_BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.PKI_BENCH_ROUNDS ?? 3);
const TARGET_PER_SECOND = 8000;
const SERVER_AND_CLIENT_AUTH = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"];

/** Refuses to time a peer whose certificate is not the real thing (verifies, right SAN and usages). */
async function checkSample(w: Workload): Promise<void> {
  const { der, issuerDer } = await w.sample();
  const cert = new X509Certificate(der);
  const issuer = new X509Certificate(issuerDer);
  const ok =
    cert.checkIssued(issuer) &&
    cert.verify(issuer.publicKey) &&
    !cert.ca &&
    (cert.subjectAltName ?? "").startsWith("URI:spiffe://") &&
    SERVER_AND_CLIENT_AUTH.every((oid) => cert.keyUsage?.includes(oid)) &&
    Math.abs(new Date(cert.validTo).getTime() - Date.now() - 86_400_000) < 120_000;
  if (!ok) throw new Error(`${w.peer} (${w.work}) issued a certificate that does not pass the sample check`);
}

interface Row {
  label: string;
  work: string;
  samples: Sample[];
}

function rowCells(row: Row, reference: number | undefined): string[] {
  const perCpu = row.samples.map((s) => s.perCpuSecond);
  const rate = median(perCpu);
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const ratio =
    reference === undefined ? "" : `${(reference / rate).toFixed(reference / rate >= 10 ? 0 : 2)}×`;
  return [
    row.label,
    fmt(rate),
    `${fmt(Math.min(...perCpu))}–${fmt(Math.max(...perCpu))}`,
    fmt(median(row.samples.map((s) => s.perWallSecond))),
    median(row.samples.map((s) => s.cpuPerWall)).toFixed(2),
    ratio,
  ];
}

async function main(): Promise<void> {
  console.log(`pki issuance benchmark: ${ROUNDS} rounds × ${SECONDS} s per workload, medians of the rounds.`);
  console.log("Certificates per CPU-second of the measuring process is the per-core figure; per wall-second");
  console.log("depends on what else the machine runs. Ratios use per CPU-second.");
  console.log(
    `node ${process.version}, OpenSSL ${process.versions.openssl}, ${cpus()[0]?.model ?? "?"} × ${cpus().length}`,
  );
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const csrs = ecdsaCsrs();
  const go = buildGoPeer();
  if (typeof go === "string") console.log(`Go peer skipped: ${go}`);
  else console.log(go.version);
  const workloads = [
    ...trellisWorkloads(csrs),
    ...(await peculiarWorkloads(csrs)),
    ...forgeWorkloads(),
    ...(typeof go === "string" ? [] : go.workloads),
  ];
  for (const w of workloads) await checkSample(w);
  const limits = nodeLimitWorkloads(csrs);

  const rows: Row[] = [
    ...workloads.map((w) => ({
      label: `${w.peer}${w.note ? ` (${w.note})` : ""}`,
      work: w.work,
      samples: [] as Sample[],
    })),
    ...limits.map((l) => ({ label: l.name, work: "limit", samples: [] as Sample[] })),
  ];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, w] of workloads.entries()) {
      process.stderr.write(`round ${round + 1}: ${w.peer} ${w.work}\n`);
      rows[i]?.samples.push(await w.run(SECONDS));
    }
    for (const [i, l] of limits.entries()) rows[workloads.length + i]?.samples.push(l.run(SECONDS));
    process.stderr.write(`round ${round + 1}/${ROUNDS} done\n`);
  }
  if (typeof go !== "string") go.cleanup();
  const breakdown = trellisBreakdown(csrs, ROUNDS * SECONDS);
  report(rows);
  console.log("\nwhere a Trellis certificate's CPU goes (operations interleaved, µs of CPU each)");
  const cells = Object.entries(breakdown).map(([name, micros]) => [name, micros.toFixed(0)]);
  console.log(formatTable(["operation", "µs CPU"], cells));
  console.log(
    `load average at end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}

function report(rows: Row[]): void {
  const header = ["workload", "per CPU-s", "min–max", "per wall-s", "CPU/wall", "Trellis ÷ peer"];
  for (const [work, title] of [
    ["csr", "CSR (P-256, verified) → 24 h leaf, 300 CSRs in rotation"],
    ["keygen", "key generation + 24 h leaf"],
  ] as const) {
    const group = rows.filter((r) => r.work === work);
    const trellis = median(group[0]?.samples.map((s) => s.perCpuSecond) ?? []);
    console.log(`\n${title}`);
    console.log(
      formatTable(
        header,
        group.map((r, i) => rowCells(r, i === 0 ? undefined : trellis)),
      ),
    );
  }
  const csrRows = rows.filter((r) => r.work === "csr");
  const trellis = median(csrRows[0]?.samples.map((s) => s.perCpuSecond) ?? []);
  console.log("\nthe limit in Node for the same work (one verify + one sign per certificate)");
  const limitRows = rows.filter((r) => r.work === "limit");
  console.log(
    formatTable(
      ["limit", "per CPU-s", "min–max", "per wall-s", "CPU/wall", "Trellis ÷ limit"],
      limitRows.map((r) => rowCells(r, trellis)),
    ),
  );
  const goRow = csrRows.find((r) => r.label.startsWith("Go"));
  const goRate = goRow ? median(goRow.samples.map((s) => s.perCpuSecond)) : undefined;
  for (const r of rows)
    recordFigure(
      `${r.work}: ${r.label}`,
      median(r.samples.map((s) => s.perCpuSecond)),
      "certs per CPU-s",
      "higher",
    );
  if (goRate) recordFigure("csr: Trellis ÷ Go crypto/x509", trellis / goRate, "×", "higher");
  const verdict =
    trellis >= TARGET_PER_SECOND && (goRate === undefined || trellis >= 1.5 * goRate) ? "met" : "NOT met";
  const vsGo = goRate === undefined ? "" : `, ${(trellis / goRate).toFixed(2)}× Go (target ≥ 1.5×)`;
  console.log(
    `\ntarget ≥ ${TARGET_PER_SECOND.toLocaleString("en-US")}/s per core: Trellis ${Math.round(trellis).toLocaleString("en-US")} per CPU-s${vsGo} → ${verdict}`,
  );
}

await main();
