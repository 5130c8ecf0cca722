// Rollout at scale on KWOK (not a test; prints figures). Defaults: 2,000 Deployments × 5
// replicas = 10,000 pods in 100 namespaces, canary 5% then waves 10/25/50/100, 60 s analysis.
// Smaller: WORKLOADS=400 REPLICAS=5 NAMESPACES=20 INTERVAL=20s node --import tsx bench/rollout-scale.bench.ts
// OPERATOR=bundle runs the operator as shipped (esbuild bundle, plain node) instead of under tsx.
// REPAIR=10 (default; 0 skips it): after the rollout, 10% more workloads are created while the
// injector is down and the data-plane repair that meshes them is timed.
// Targets (../shared/TARGETS.md): wall clock ≤ 1.10 × the sum of the analysis waits, ≤ 1.5 API
// writes per workload, operator RSS ≤ 250 MB, no workload restarted twice.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundle } from "../hack/bundle.ts";
import { recordFigure } from "./bench-figures.ts";
import { runRolloutScale } from "./rollout-scale.ts";

const env = (k: string, d: string) => process.env[k] ?? d;
// OPERATOR=bundle measures the operator as the image ships it (one esbuild bundle under plain
// node); the default runs the sources under tsx, whose loader alone adds ~170 MB of RSS.
let operatorBundle: string | undefined;
if (env("OPERATOR", "tsx") === "bundle") {
  const outdir = join(tmpdir(), `trellis-bench-dist-${process.pid}`);
  await bundle(outdir);
  operatorBundle = join(outdir, "trellis.mjs");
}
const figures = await runRolloutScale({
  workloads: Number(env("WORKLOADS", "2000")),
  replicas: Number(env("REPLICAS", "5")),
  namespaces: Number(env("NAMESPACES", "100")),
  nodes: Number(env("NODES", "10")),
  interval: env("INTERVAL", "60s"),
  waves: env("WAVES", "10,25,50,100").split(",").map(Number),
  canaryPercent: Number(env("CANARY", "5")),
  maxConcurrentRestarts: Number(env("MAX_RESTARTS", "500")),
  peer: env("PEER", "1") === "1",
  operatorBundle,
  repairPercent: Number(env("REPAIR", "10")),
  log: (l) => process.stderr.write(`[bench] ${l}\n`),
});
recordFigure("operator peak RSS", figures.peakRssMb, "MB", "lower");
recordFigure("operator CPU during the rollout", figures.cpuSeconds, "s", "lower");
recordFigure("operator API writes per workload", figures.writesPerWorkload, "writes", "lower");
recordFigure("rollout wall clock", figures.rolloutWallS, "s", "lower");
if (figures.peerWallS)
  recordFigure(
    "restart phase ÷ peer",
    (figures.rolloutWallS - figures.sumOfWaitsS) / figures.peerWallS,
    "×",
    "lower",
  );
const f = (n: number | undefined, d = 1) => (n === undefined ? "n/a" : n.toFixed(d));
const rows: Array<[string, string, string]> = [
  ["workloads / pods", `${figures.workloads} / ${figures.pods}`, ""],
  ["steps (canary + waves)", String(figures.steps), ""],
  ["sum of analysis waits", `${f(figures.sumOfWaitsS)} s`, ""],
  [
    "rollout wall clock",
    `${f(figures.rolloutWallS)} s`,
    `${f(figures.overheadRatio, 3)} × waits (target ≤ 1.10)`,
  ],
  [
    "peer: kubectl rollout restart, all at once",
    figures.peerWallS === undefined ? "not run" : `${f(figures.peerWallS)} s`,
    figures.peerWallS
      ? `Trellis − waits = ${f(figures.rolloutWallS - figures.sumOfWaitsS)} s of restarts = ${f((figures.rolloutWallS - figures.sumOfWaitsS) / figures.peerWallS, 2)} × the peer; wall clock = ${f(figures.rolloutWallS / (figures.sumOfWaitsS + figures.peerWallS), 3)} × (waits + peer)`
      : "",
  ],
  [
    "operator API writes",
    String(figures.apiWrites),
    `${f(figures.writesPerWorkload, 2)} per workload (target ≤ 1.5)`,
  ],
  ["operator API requests per pod", f(figures.requestsPerPod, 3), `${figures.apiReads} reads`],
  [
    "operator peak RSS",
    `${f(figures.peakRssMb)} MB`,
    `target ≤ 250 MB (${operatorBundle ? "bundled, as shipped" : "sources under tsx"})`,
  ],
  ["operator CPU during rollout", `${f(figures.cpuSeconds)} s`, ""],
  [
    "rollout reconcile p99",
    figures.reconcileP99S === undefined ? "n/a" : `≤ ${figures.reconcileP99S} s`,
    "histogram bucket bound",
  ],
  [
    "workloads restarted twice / not at all",
    `${figures.restartedTwice} / ${figures.notRestarted}`,
    "target 0 / 0",
  ],
  ["pods without a proxy at the end", String(figures.podsWithoutProxy), "webhook failed open; target 0"],
];
const r = figures.repair;
if (r)
  rows.push(
    [
      "repair: workloads / pods without a proxy",
      `${r.workloads} / ${r.pods}`,
      "created while the injector was down",
    ],
    [
      "repair wall clock",
      `${f(r.wallS)} s`,
      `${figures.steps} steps of ${f(figures.sumOfWaitsS / figures.steps)} s`,
    ],
    [
      "repair API writes",
      String(r.apiWrites),
      `${f(r.writesPerWorkload, 2)} per repaired workload (rollout: ${f(figures.writesPerWorkload, 2)}; target ≤ 1.5)`,
    ],
    ["operator peak RSS after the repair", `${f(r.peakRssMb)} MB`, "target ≤ 250 MB"],
    ["operator CPU during the repair", `${f(r.cpuSeconds)} s`, ""],
    [
      "repaired workloads restarted twice / not at all",
      `${r.restartedTwice} / ${r.notRestarted}`,
      "target 0 / 0",
    ],
  );
for (const [k, v, note] of rows) process.stdout.write(`${k.padEnd(44)} ${v.padEnd(22)} ${note}\n`);
