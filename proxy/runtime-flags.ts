/**
 * The Node/V8 flags the proxy image starts the bundled proxy with
 * (`node <flags> /proxy.mjs`). They bound the heap of a sidecar that should stay near its
 * working set; each was measured with bench/proxy-hop.bench.ts (docs/proxy.md, "Runtime
 * flags") for RSS and for p99 at a fixed rate, and kept only when it helped one without
 * hurting the other.
 *
 * Owns: that list. The image build (hack/) reads it; the benchmark runs the proxies with it.
 */
export const proxyNodeFlags: readonly string[] = [];
