// `stat`'s table, like `linkerd viz stat`: a row per workload and direction — meshed pods,
// success rate, requests per second and in the window, p50/p95/p99 latency, mTLS share — then
// where the figures came from and the pods that could not be reached. Pure; golden-tested.
import { PLAIN, renderTable, type Style } from "../output.ts";
import type { StatReport } from "./stat-report.ts";

const pct = (v: number | undefined, digits = 2) => (v === undefined ? "-" : `${(100 * v).toFixed(digits)}%`);
const ms = (v: number | undefined) =>
  v === undefined ? "-" : v < 10 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`;
const rps = (v: number | undefined) => (v === undefined ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(1));

export function renderStat(report: StatReport, style: Style = PLAIN): string {
  const rows = report.rows.map((r) => {
    const f = r.figures;
    const rate =
      f.successRate === undefined
        ? "-"
        : f.successRate < 0.95
          ? style.bad(pct(f.successRate))
          : pct(f.successRate);
    return [
      r.namespace,
      r.workload,
      r.direction,
      `${r.meshedPods}/${r.totalPods}`,
      rate,
      rps(f.rps),
      String(f.requests),
      ms(f.p50Ms),
      ms(f.p95Ms),
      ms(f.p99Ms),
      pct(f.mtlsShare, 0),
    ];
  });
  const out = [
    rows.length === 0
      ? "no workloads in meshed namespaces\n"
      : renderTable(
          [
            "NAMESPACE",
            "WORKLOAD",
            "DIRECTION",
            "MESHED",
            "SUCCESS",
            "RPS",
            "REQUESTS",
            "P50",
            "P95",
            "P99",
            "MTLS",
          ],
          rows,
        ),
    style.dim(`from ${report.source}, window ${report.window}\n`),
  ];
  if (report.unreachable.length > 0) {
    out.push(style.warn(`could not read ${report.unreachable.length} pod(s):\n`));
    for (const u of report.unreachable.slice(0, 10)) out.push(`  ${u.pod}: ${u.reason}\n`);
    if (report.unreachable.length > 10) out.push(`  and ${report.unreachable.length - 10} more\n`);
  }
  return out.join("");
}
