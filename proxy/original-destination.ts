/**
 * The original destination of a connection that a nat REDIRECT rule sent to the proxy
 * (SO_ORIGINAL_DST), read through the proxy's native addon (native-addon.ts).
 *
 * Owns: turning the addon's answer into a HostPort, and refusing capture mode without the
 * addon. Does not decide what the destination means (capture.ts).
 */
import type { Socket } from "node:net";
import type { HostPort } from "./config.ts";
import { loadNativeAddon, type NativeAddon } from "./native-addon.ts";

type Addon = Pick<NativeAddon, "originalDestination">;

/** The addon, for a proxy in capture mode: it cannot work without it, so this throws. */
export function loadOriginalDestinationAddon(paths?: readonly string[]): Addon {
  try {
    return loadNativeAddon(paths);
  } catch (err) {
    throw new Error(`capture mode needs the original-destination addon: ${(err as Error).message}`);
  }
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
