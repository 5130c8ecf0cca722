/**
 * Outbound, capture mode: where a connection the application made was going, decided once per
 * connection from its original destination (SO_ORIGINAL_DST) — before any byte is read:
 *
 * - no original destination, or the application dialled the outbound port itself: explicit
 *   use (HTTP is routed by its `Host`, as without capture);
 * - a destination that is the proxy itself (one of its ports on a local address): refused, a
 *   loop;
 * - otherwise that destination; its traffic is relayed as opaque TCP without detection when the
 *   port is an opaque port or the destination service says so (a Service port's appProtocol,
 *   the pod's opaque-ports annotation), and detected (HTTP/1.1, HTTP/2 or opaque) otherwise.
 *
 * Owns: that decision and the "is this the proxy itself" rule shared by every outbound path.
 * Does not route HTTP (layers/discover.ts) or relay bytes (opaque.ts).
 */
import type { Socket } from "node:net";
import { networkInterfaces } from "node:os";
import { type HostPort, type PortSet, portSetHas } from "./config.ts";
import type { Discovery } from "./discovery-client.ts";

export type OutboundDecision =
  | { kind: "explicit" }
  | { kind: "loop"; destination: HostPort }
  | { kind: "destination"; destination: HostPort; opaque: boolean };

/** `::ffff:10.0.0.1` → `10.0.0.1`: dual-stack sockets report IPv4 peers mapped. */
export function unmapAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** `host:port` as an authority and as the discovery service expects it (`[v6]:port`). */
export function authorityOf(d: HostPort): string {
  return d.host.includes(":") ? `[${d.host}]:${d.port}` : `${d.host}:${d.port}`;
}

function isLoopback(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address === "localhost";
}

/** The proxy's own listening ports and the addresses that reach them. */
export class ProxyAddresses {
  private readonly local: Set<string>;

  constructor(
    readonly ports: ReadonlySet<number>,
    interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
  ) {
    this.local = new Set(["0.0.0.0", "::"]);
    for (const list of Object.values(interfaces)) for (const i of list ?? []) this.local.add(i.address);
  }

  /** True when connecting to `d` would reach this proxy: one of its ports on a local address. */
  isSelf(d: HostPort): boolean {
    if (!this.ports.has(d.port)) return false;
    const host = unmapAddress(d.host);
    return isLoopback(host) || this.local.has(host);
  }
}

export interface OutboundDestinationOptions {
  originalDestination: (socket: Socket) => HostPort | undefined;
  self: ProxyAddresses;
  opaquePorts: PortSet;
  discovery: Discovery | undefined;
}

/** Decides what an accepted outbound connection is (see the module comment). */
export async function decideOutbound(
  socket: Socket,
  o: OutboundDestinationOptions,
): Promise<OutboundDecision> {
  const found = o.originalDestination(socket);
  if (!found) return { kind: "explicit" };
  const destination = { host: unmapAddress(found.host), port: found.port };
  if (destination.port === socket.localPort && destination.host === unmapAddress(socket.localAddress ?? "")) {
    return { kind: "explicit" };
  }
  if (o.self.isSelf(destination)) return { kind: "loop", destination };
  if (portSetHas(o.opaquePorts, destination.port)) return { kind: "destination", destination, opaque: true };
  // The destination service knows a Service port's appProtocol; a first lookup waits for its
  // answer (bounded by limits.discoveryTimeoutMs), later connections find it cached.
  const resolved = o.discovery ? await o.discovery.resolve(authorityOf(destination)) : "direct";
  const opaque = resolved !== undefined && resolved !== "direct" && resolved.opaque;
  return { kind: "destination", destination, opaque };
}
