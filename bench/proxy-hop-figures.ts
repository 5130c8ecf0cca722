// What bench/proxy-hop.bench.ts hands to bench/runtimes.bench.ts (bench-figures.ts), and the
// optional memory breakdown of its Node processes: with BENCH_HEAP_REPORT=1 they preload
// bench/proxy-heap-report.mjs, and after the fixed-rate run each reports its V8 heap spaces,
// external memory and anonymous/file-backed RSS (SIGUSR2, Node processes only).
import { existsSync, mkdtempSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordFigure } from "./bench-figures.ts";

export interface HeapReport {
  rss: number;
  anon: number;
  file: number;
  heap: number;
  spaces: Record<string, number>;
  external: number;
  arrayBuffers: number;
  threads: number;
}

const enabled = process.env.BENCH_HEAP_REPORT === "1";
const heapDir = enabled ? mkdtempSync(join(tmpdir(), "trellis-heap-")) : "";
if (enabled) process.env.BENCH_HEAP_DIR = heapDir;

/** Node flags that load the reporter, when BENCH_HEAP_REPORT=1. */
export function heapReportFlags(): string[] {
  return enabled ? ["--import", fileURLToPath(new URL("./proxy-heap-report.mjs", import.meta.url))] : [];
}

// By the binary, not /proc/<pid>/comm: Node 24 names its main thread "MainThread".
const isNode = (pid: number) => basename(readlinkSync(`/proc/${pid}/exe`)) === "node";

/** Asks each Node process among `pids` for its memory breakdown (none when disabled). */
export async function heapReports(pids: number[]): Promise<HeapReport[]> {
  if (!enabled || !pids.every(isNode)) return [];
  const reports: HeapReport[] = [];
  for (const pid of pids) {
    const file = join(heapDir, `${pid}.json`);
    const before = existsSync(file) ? readFileSync(file, "utf8") : "";
    process.kill(pid, "SIGUSR2");
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const now = existsSync(file) ? readFileSync(file, "utf8") : "";
      if (now && now !== before) {
        reports.push(JSON.parse(now) as HeapReport);
        break;
      }
    }
  }
  return reports;
}

export interface RowFigures {
  name: string;
  hops: number;
  rps: number;
  perCore: number;
  pairedP50Us: number | undefined;
  pairedP99Us: number | undefined;
  idleRssMb: number[];
  rateRssMb: number[];
  rateAnonMb: number[];
  rssMb: number[];
  heap: HeapReport[];
}

const sum = (list: number[]) => list.reduce((a, b) => a + b, 0);

/** Records one measured path's figures (proxies' memory summed over the hops). */
export function recordRow(r: RowFigures): void {
  if (r.hops === 0) return;
  const n = r.name;
  recordFigure(`${n}: wrk req/s`, r.rps, "req/s", "higher");
  recordFigure(`${n}: CPU per request`, 1e6 / r.perCore, "µs", "lower");
  if (r.pairedP50Us !== undefined) recordFigure(`${n}: paired added p50 / hop`, r.pairedP50Us, "µs", "lower");
  if (r.pairedP99Us !== undefined) recordFigure(`${n}: paired added p99 / hop`, r.pairedP99Us, "µs", "lower");
  recordFigure(`${n}: RSS idle`, sum(r.idleRssMb), "MB", "lower");
  recordFigure(`${n}: RSS peak @ fixed rate`, sum(r.rateRssMb), "MB", "lower");
  recordFigure(`${n}: anonymous RSS after the fixed rate`, sum(r.rateAnonMb), "MB", "lower");
  recordFigure(`${n}: RSS peak under wrk`, sum(r.rssMb), "MB", "lower");
  if (r.heap.length === 0) return;
  const total = (f: (h: HeapReport) => number) => sum(r.heap.map(f));
  const space = (...names: string[]) => total((h) => sum(names.map((s) => h.spaces[s] ?? 0)));
  const breakdown: Array<[string, number]> = [
    ["file-backed (the node binary's pages)", total((h) => h.file)],
    ["anonymous", total((h) => h.anon)],
    ["V8 heap, all spaces", total((h) => h.heap)],
    ["V8 new space", space("new_space", "new_large_object_space")],
    ["V8 old space", space("old_space", "large_object_space")],
    ["V8 code space", space("code_space", "code_large_object_space")],
    ["V8 trusted space (V8 ≥ 12)", space("trusted_space", "trusted_large_object_space")],
    ["external (ArrayBuffers included)", total((h) => h.external)],
    ["ArrayBuffers", total((h) => h.arrayBuffers)],
    ["malloc and the rest (anonymous − heap − external)", total((h) => h.anon - h.heap - h.external)],
  ];
  for (const [what, mb] of breakdown) recordFigure(`${n}: after the fixed rate: ${what}`, mb, "MB", "lower");
}
