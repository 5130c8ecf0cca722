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
  /** `{address, port}`, or the errno when the kernel has no original destination. */
  originalDestination(fd: number): { address: string; port: number } | number;
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

/**
 * The address and port the client connected to before redirection; undefined when the
 * kernel has none (the connection was not redirected, or is already closed).
 */
export function originalDestination(addon: Addon, socket: Socket): HostPort | undefined {
  const fd = descriptorOf(socket);
  if (fd === undefined) return undefined;
  const r = addon.originalDestination(fd);
  return typeof r === "number" ? undefined : { host: r.address, port: r.port };
}
