// Builds the proxy's one native addon (proxy/native/proxy-native.c: SO_ORIGINAL_DST for
// transparent capture, malloc_trim for memory release) with the machine's C compiler against the Node-API headers from the
// lock file (node-api-headers). Node-API is ABI-stable, so the one build loads on Node 20 and
// 24 alike. Deterministic: no timestamps or paths end up in the output (-ffile-prefix-map,
// no build id). Skips the build when the output is newer than the source and the headers.
//   node --import tsx hack/build-native.ts [--out <file>]
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
export const NATIVE_SOURCE = join(root, "proxy/native/proxy-native.c");
const headers = join(root, "node_modules/node-api-headers/include");
/** Where the proxy looks for the addon when it runs from its sources (proxy/native-addon.ts). */
export const SOURCE_TREE_ADDON = join(root, "proxy/native/build/proxy-native.node");

function newer(out: string, inputs: string[]): boolean {
  if (!existsSync(out)) return false;
  const built = statSync(out).mtimeMs;
  return inputs.every((i) => statSync(i).mtimeMs <= built);
}

/** Compiles the addon to `out` unless it is up to date; returns `out`. */
export function buildNativeAddon(out = SOURCE_TREE_ADDON): string {
  const inputs = [NATIVE_SOURCE, join(headers, "node_api.h")];
  if (newer(out, inputs)) return out;
  mkdirSync(dirname(out), { recursive: true });
  const cc = process.env.CC ?? "cc";
  const partial = `${out}.${process.pid}.partial`;
  execFileSync(
    cc,
    [
      "-O2",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-shared",
      "-fPIC",
      "-fvisibility=hidden",
      "-Wl,--build-id=none",
      `-ffile-prefix-map=${root}=.`,
      "-I",
      headers,
      "-o",
      partial,
      NATIVE_SOURCE,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  // Test files build it at the same time: each links its own file and renames it into place, so
  // nobody loads a half-written one.
  renameSync(partial, out);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  process.stdout.write(`${buildNativeAddon(values.out ? resolve(values.out) : undefined)}\n`);
}
