/**
 * The proxy's one native addon (proxy/native/proxy-native.c, built by hack/build-native.ts
 * beside the bundle, or under proxy/native/build/ from sources): SO_ORIGINAL_DST for capture and
 * malloc_trim for memory release, the two things Node does not offer.
 *
 * Owns: finding and loading it once. Does not use it (original-destination.ts,
 * memory-release.ts do).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface NativeAddon {
  /** Writes the address's bytes (4 or 16) into `out`; returns the port, or -errno. */
  originalDestination(fd: number, ipv4: boolean, out: Buffer): number;
  /** Gives the C allocator's whole free pages back to the kernel; true when some were. */
  releaseFreeMemory(): boolean;
}

/** Where the addon is looked for, relative to this module: the bundle's folder, then the sources' build. */
export const addonCandidates = ["./proxy-native.node", "./native/build/proxy-native.node"].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

let loaded: NativeAddon | undefined;

/** Loads the addon once; throws with every path tried when it is missing or does not load. */
export function loadNativeAddon(paths: readonly string[] = addonCandidates): NativeAddon {
  if (loaded) return loaded;
  const path = paths.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `no native addon at ${paths.join(", ")} (npm run build, or node --import tsx hack/build-native.ts)`,
    );
  }
  const module = { exports: {} as Partial<NativeAddon> };
  process.dlopen(module, path);
  const exports = module.exports;
  if (typeof exports.originalDestination !== "function" || typeof exports.releaseFreeMemory !== "function") {
    throw new Error(`${path} is not the proxy's native addon (hack/build-native.ts builds it)`);
  }
  loaded = exports as NativeAddon;
  return loaded;
}
