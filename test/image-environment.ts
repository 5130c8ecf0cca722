// The variables an image sets for its program (proxy/runtime-flags.ts, operator/runtime-flags.ts),
// as tests and benchmarks start that program: the image's own, unless a BENCH_*_NODE_ENV setting
// replaces them ("K=V …", or "none" for none).
export function imageEnvironment(
  setting: string | undefined,
  image: Readonly<Record<string, string>>,
): Record<string, string> {
  if (setting === undefined) return { ...image };
  return Object.fromEntries(
    (setting === "none" ? [] : setting.split(/\s+/).filter(Boolean)).map(
      (kv) => kv.split("=", 2) as [string, string],
    ),
  );
}
