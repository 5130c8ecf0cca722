/**
 * The Node/V8 flags the proxy image starts the bundled proxy with:
 * `node --max-semi-space-size=1 /proxy.mjs`. Each was measured with bench/proxy-hop.bench.ts
 * (docs/proxy.md, "Runtime flags") for RSS and for p99 at a fixed rate, and kept only when it
 * helped one without hurting the other.
 *
 * - `--max-semi-space-size=1` (MiB): caps the young generation, which V8 otherwise grows to
 *   16 MiB per semi-space under allocation pressure; ~6 MB less RSS at 500 req/s and under
 *   wrk, scavenges stay short (a few hundred requests' garbage each).
 *
 * Measured and left out: `--single-threaded-gc` (no RSS gain, worse latency in the same
 * run), `--single-threaded`, `--v8-pool-size=1` and MALLOC_ARENA_MAX=1 (within noise).
 *
 * Owns: that list. The image build reads it; the benchmark runs the proxies with it.
 */
export const proxyNodeFlags: readonly string[] = ["--max-semi-space-size=1"];
