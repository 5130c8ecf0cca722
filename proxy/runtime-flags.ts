/**
 * The Node/V8 flags and the variables the proxy image starts the bundled proxy with:
 * `MALLOC_ARENA_MAX=1 node --max-semi-space-size=1 --no-maglev /app/proxy.mjs`. Each was
 * measured on Node 24 against Node 20 with bench/runtimes.bench.ts over bench/proxy-hop.bench.ts
 * (docs/node-runtime.md, "What each flag does on Node 24"; docs/proxy.md, "Runtime flags") for
 * RSS, CPU per request and paired p99, and kept only when it helped one without hurting another.
 *
 * - `--max-semi-space-size=1` (MiB): caps the young generation, which V8 otherwise grows to
 *   16 MiB per semi-space under allocation pressure (on Node 24 the new space reached 7–13 MB
 *   without it: 6 MB more RSS at 500 req/s, up to 25 MB more under wrk); scavenges stay short.
 * - `--no-maglev`: Node 22+ compiles warm functions with Maglev before Turbofan; without it the
 *   tiers are Node 20's (Ignition, Sparkplug, Turbofan). 1–2 MB less RSS (code and trusted
 *   space, Maglev's pages of the binary), CPU per request no worse.
 * - `MALLOC_ARENA_MAX=1` (glibc): V8's and Node's helper threads otherwise each get a malloc
 *   arena that keeps what they freed; on Node 24 those arenas held 8–9 MB at 500 req/s. One arena:
 *   ~5 MB less RSS, CPU per request no worse (the proxy allocates on its main thread).
 *
 * Measured and left out on Node 24: `--optimize-for-size`, `--single-threaded-gc`, `--max-lazy`,
 * `--v8-pool-size=1`, `--single-threaded`, `--no-concurrent-array-buffer-sweeping`, `--minor-ms`,
 * `--external-memory-accounted-in-global-limit`, `MALLOC_TRIM_THRESHOLD_` (no gain or worse),
 * `MALLOC_MMAP_THRESHOLD_=65536` (5–8 MB less on the plain hop at 500 req/s, but 1.37× the CPU
 * per request on the mTLS pair), `--no-turboshaft` (6 MB fewer pages of the binary, but
 * 2.3× the CPU, as with `--no-opt`), `--no-opt --no-maglev` (Sparkplug only: 13 MB less RSS,
 * twice the CPU per request), `--jitless` (17 MB less, 3.3× the CPU). On Node 20: `--single-threaded-gc`,
 * `--single-threaded`, `--v8-pool-size=1` (within noise).
 *
 * Beside the flags, the proxy gives glibc's free pages back to the kernel itself
 * (memory-release.ts, limits.memoryReleaseIntervalMs): after a load burst, 7 MB less RSS.
 *
 * Owns: those lists. The image build reads them; the benchmark runs the proxies with them.
 */
export const proxyNodeFlags: readonly string[] = ["--max-semi-space-size=1", "--no-maglev"];

/** Variables the proxy image sets for its process (beside PATH and the version). */
export const proxyNodeEnvironment: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "1" };
