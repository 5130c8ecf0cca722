/**
 * The original destination of a connection that a nat REDIRECT rule sent to the proxy
 * (SO_ORIGINAL_DST), read through the proxy's one native addon (proxy/native/original-dst.c,
 * built by hack/build-native.ts beside the bundle, or under proxy/native/build/ from sources).
 *
 * Owns: loading the addon and turning its answer into a HostPort. Does not decide what the
 * destination means (capture.ts) and is only loaded in capture mode: a proxy that does not
 * capture never needs the addon.
 */
import { existsSync } from "node:fs";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import type { HostPort } from "./config.ts";

interface Addon {
  /** Writes the address's bytes (4 or 16) into `out`; returns the port, or -errno. */
  originalDestination(fd: number, ipv4: boolean, out: Buffer): number;
}

/** Where the addon is looked for, relative to this module: the bundle's folder, then the sources' build. */
export const addonCandidates = ["./original-dst.node", "./native/build/original-dst.node"].map((p) =>
  fileURLToPath(new URL(p, import.meta.url)),
);

let loaded: Addon | undefined;

/** Loads the addon once; throws with every path tried when it is missing or does not load. */
export function loadOriginalDestinationAddon(paths: readonly string[] = addonCandidates): Addon {
  if (loaded) return loaded;
  const path = paths.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `capture mode needs the original-destination addon; none at ${paths.join(", ")} (npm run build, or node --import tsx hack/build-native.ts)`,
    );
  }
  const module = { exports: {} as Partial<Addon> };
  process.dlopen(module, path);
  if (typeof module.exports.originalDestination !== "function") {
    throw new Error(`${path} is not the original-destination addon`);
  }
  loaded = module.exports as Addon;
  return loaded;
}

/** The socket's file descriptor (libuv's TCP handle); undefined for a socket without one. */
function descriptorOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

const scratch = Buffer.alloc(16);

/** RFC 5952 text of 16 address bytes: lower-case hex, the longest run of zero groups as `::`. */
export function formatIpv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(":");
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * The address and port the client connected to before redirection; undefined when the
 * kernel has none (the connection was not redirected, or is already closed). IPv4 peers on a
 * dual-stack socket (`::ffff:a.b.c.d`) are read with the IPv4 option, as the kernel tracks them.
 */
export function originalDestination(addon: Addon, socket: Socket): HostPort | undefined {
  const fd = descriptorOf(socket);
  const local = socket.localAddress;
  if (fd === undefined || local === undefined) return undefined;
  const ipv4 = local.includes(".");
  const port = addon.originalDestination(fd, ipv4, scratch);
  if (port <= 0) return undefined;
  const host = ipv4 ? `${scratch[0]}.${scratch[1]}.${scratch[2]}.${scratch[3]}` : formatIpv6(scratch);
  return { host, port };
}
