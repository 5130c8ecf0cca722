// Before/after: runs one benchmark under each Node runtime in the same run and prints its figures
// side by side — Node 20.20.2 (what Trellis shipped before issue 19) against the pinned Node 24
// (hack/node-runtime.json), or any variants of them (V8 flags, environment). Rounds alternate the
// order (A B, B A, ...) so a machine getting busier or quieter does not favour one runtime; every
// sample is printed, and ratios are of medians. The benchmark runs whole under the variant's node
// (`node --import tsx <bench>`): everything it starts as process.execPath runs on it too.
//
// Run: bash hack/node.sh --import tsx bench/runtimes.bench.ts <bench file>
//   e.g. bench/identity-issue.bench.ts, bench/pki-issue.bench.ts,
//        BENCH_ONLY=trellis,node-relay,trellis-mtls … bench/proxy-hop.bench.ts,
//        OPERATOR=bundle WORKLOADS=400 … bench/rollout-scale.bench.ts
// Env: RUNTIME_ROUNDS (default 2); RUNTIME_VARIANTS, a JSON list of {"node": "20" | "24",
//   "label"?: string, "env"?: {…}} (default: Node 20 then Node 24, each with the benchmark's own
//   defaults); BENCH_BASELINE_NODE (another Node 20 binary). Every other variable reaches the
//   benchmark unchanged. The figures are those it records with bench/bench-figures.ts.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Figure } from "./bench-figures.ts";
import { comparedRuntimes, type Runtime } from "./node-runtimes.ts";
import { median } from "./pki-measure.ts";

interface Variant {
  label: string;
  runtime: Runtime;
  env: Record<string, string>;
}

const bench = process.argv[2];
if (!bench || !existsSync(bench)) {
  process.stderr.write("usage: bash hack/node.sh --import tsx bench/runtimes.bench.ts <bench file>\n");
  process.exit(2);
}
const rounds = Number(process.env.RUNTIME_ROUNDS ?? 2);
const runtimes = comparedRuntimes();

function variants(): Variant[] {
  const spec = JSON.parse(process.env.RUNTIME_VARIANTS ?? '[{"node":"20"},{"node":"24"}]') as Array<{
    node: string;
    label?: string;
    env?: Record<string, string>;
  }>;
  return spec.map((v) => {
    const runtime = runtimes.get(v.node);
    if (!runtime)
      throw new Error(`RUNTIME_VARIANTS: no Node ${v.node} (have ${[...runtimes.keys()].join(", ")})`);
    const extra = Object.entries(v.env ?? {})
      .map(([k, val]) => `${k}=${val}`)
      .join(" ");
    return {
      label: v.label ?? `Node ${runtime.version}${extra ? ` ${extra}` : ""}`,
      runtime,
      env: v.env ?? {},
    };
  });
}

/** Runs the benchmark once under a variant; its output goes to stderr, its figures come back. */
function runOnce(v: Variant, dir: string, n: number): Promise<Figure[]> {
  const file = join(dir, `figures-${n}.jsonl`);
  return new Promise((resolve, reject) => {
    const child = spawn(v.runtime.node, ["--import", "tsx", bench!], {
      env: { ...process.env, ...v.env, BENCH_RESULT_FILE: file },
      stdio: ["ignore", process.stderr, process.stderr],
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code !== 0) return reject(new Error(`${bench} under ${v.label} exited ${code ?? signal}`));
      const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
      resolve(lines.map((l) => JSON.parse(l) as Figure));
    });
  });
}

const fmt = (n: number) =>
  Math.abs(n) >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(Math.abs(n) >= 10 ? 1 : 2);

function table(vs: Variant[], samples: Map<string, Figure[]>[]): string {
  const names: string[] = [];
  for (const s of samples) for (const name of s.keys()) if (!names.includes(name)) names.push(name);
  const head = ["figure", ...vs.map((v) => v.label), ...vs.slice(1).map((_, i) => `${i + 2} ÷ 1`)];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const name of names) {
    const per = samples.map((s) => s.get(name) ?? []);
    const first = per.find((p) => p.length)?.[0];
    const medians = per.map((p) => (p.length ? median(p.map((f) => f.value)) : Number.NaN));
    const cells = per.map((p) => (p.length ? p.map((f) => fmt(f.value)).join(" / ") : "—"));
    const ratios = medians.slice(1).map((m) => {
      const r = m / medians[0]!;
      if (!Number.isFinite(r)) return "—";
      const worse = (first?.better === "lower" && r > 1.05) || (first?.better === "higher" && r < 0.95);
      return `${r.toFixed(2)}×${worse ? " (worse)" : ""}`;
    });
    lines.push(`| ${name} (${first?.unit ?? ""}) | ${[...cells, ...ratios].join(" | ")} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const vs = variants();
  const dir = mkdtempSync(join(tmpdir(), "trellis-runtimes-"));
  const load = () =>
    loadavg()
      .map((l) => l.toFixed(1))
      .join(" ");
  const header = [
    `${bench} under ${vs.length} runtime variants, ${rounds} rounds (order alternating), one run`,
    ...vs.map((v, i) => `  ${i + 1}. ${v.label}: ${v.runtime.node}`),
    `${cpus()[0]?.model ?? "?"} × ${cpus().length}; load average at the start ${load()}`,
  ].join("\n");
  process.stderr.write(`${header}\n`);
  const samples = vs.map(() => new Map<string, Figure[]>());
  let n = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      const order = vs.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        process.stderr.write(`\n=== round ${round + 1}/${rounds}: ${vs[i]!.label}\n`);
        for (const f of await runOnce(vs[i]!, dir, n++)) {
          const list = samples[i]!.get(f.name) ?? [];
          list.push(f);
          samples[i]!.set(f.name, list);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(
    `${header}\n\nEach cell: one value per round (and per round inside the benchmark), in order; ratios of medians.\n\n${table(vs, samples)}\n\nload average at the end: ${load()}\n`,
  );
}

await main();
