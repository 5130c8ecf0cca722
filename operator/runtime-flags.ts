/**
 * The Node/V8 flags and the variables the operator image starts the bundled operator with:
 * `MALLOC_ARENA_MAX=1 node --max-semi-space-size=4 /app/trellis.mjs operator`. Measured with
 * bench/rollout-scale.bench.ts (docs/upgrades.md, "The operator's young generation").
 *
 * - `--max-semi-space-size=4` (MiB): caps V8's young generation. The operator allocates in
 *   bursts — a page of 500 pods parsed from a list, a watch event per pod during a rollout, a
 *   reconcile reading every pod view — and under that pressure V8 grows each semi-space up to its
 *   default maximum (16 MiB on Node 24), so the operator's peak RSS held ~60 MB of new space that
 *   a scavenge mostly finds dead. With 4 MiB the peak over a rollout of 2,000 workloads fell
 *   from 262–268 MB to 202–203 MB with 2,000 pods and from 294 MB to 269–271 MB with 10,000 pods,
 *   for ~1 s more CPU at 2,000 pods and ~7% more CPU per second of rollout at 10,000.
 *
 * - `MALLOC_ARENA_MAX=1` (glibc, in the image's environment): V8's helper threads (concurrent
 *   marking, compilation) otherwise each get a malloc arena that keeps what they freed; during a
 *   rollout of 2,000 workloads six of them held 13–15 MB. One arena: peak RSS 201.2 / 203.7 MB
 *   (rollout / after the repair) → 193.1–193.6 / 193.4–194.1 MB, CPU over the rollout no worse
 *   (8.9 → 7.4–7.9 s).
 *   The proxy runs with the same setting (proxy/runtime-flags.ts).
 *
 * Owns: those lists. The image build reads them; tests and benchmarks start the operator with them.
 */
export const operatorNodeFlags: readonly string[] = ["--max-semi-space-size=4"];

/** Variables the operator image sets for its process (beside PATH and the version). */
export const operatorNodeEnvironment: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "1" };
