// Figures a benchmark hands to bench/runtimes.bench.ts, which runs it once per Node runtime and
// prints them side by side. When BENCH_RESULT_FILE is set (only that driver sets it) each figure
// is appended to it as one JSON line; otherwise this does nothing, and the benchmark prints its
// own tables as before.
import { appendFileSync } from "node:fs";

export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** Which way is better, so the driver can say whether a runtime made a figure worse. */
  better: "lower" | "higher" | "none";
}

export function recordFigure(
  name: string,
  value: number,
  unit: string,
  better: Figure["better"] = "none",
): void {
  const file = process.env.BENCH_RESULT_FILE;
  if (!file || !Number.isFinite(value)) return;
  const figure: Figure = { name, value, unit, better };
  appendFileSync(file, `${JSON.stringify(figure)}\n`);
}
