/**
 * Inbound, capture mode: which application port a connection is for, decided once per
 * connection before any byte reaches the application.
 *
 * - Plaintext that nat rules redirected: the port of its original destination.
 * - mTLS from a peer proxy with the transport header: the port the header names.
 * - Anything else (a peer proxy too old to send the header, plaintext sent to the inbound port
 *   itself): the configured fallback (`inbound.app`), or nothing — the connection is refused.
 *
 * The answer is always this pod: the address the connection arrived on (the pod's own IP, never
 * 127.0.0.1, so a listener an application bound to loopback only is not exposed by the mesh) and
 * a port that is not one of the proxy's own. A peer is authenticated, but what it names is
 * still input: it can choose a port of this pod, nothing else.
 *
 * Owns: that rule. Does not read the header (transport-header.ts) or authorize the peer.
 */
import type { Socket } from "node:net";
import type { HostPort } from "./config.ts";
import { unmapAddress } from "./outbound-destination.ts";

export type TargetDecision = { ok: true; target: HostPort } | { ok: false; reason: string };

export interface InboundTargetOptions {
  /** The proxy's own ports (inbound, outbound, admin): never a target. */
  proxyPorts: ReadonlySet<number>;
  /** Where connections that name no port go; undefined refuses them. */
  fallback: HostPort | undefined;
}

export class InboundTargets {
  constructor(private readonly o: InboundTargetOptions) {}

  /**
   * The target for `port` on the address `socket` arrived on; undefined `port` means none was
   * named (a peer without the header, plaintext sent to the inbound port itself): the fallback.
   */
  resolve(socket: Socket, port: number | undefined): TargetDecision {
    if (port === undefined) {
      return this.o.fallback
        ? { ok: true, target: this.o.fallback }
        : { ok: false, reason: "no_target_port" };
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535 || this.o.proxyPorts.has(port)) {
      return { ok: false, reason: "bad_target_port" };
    }
    const local = socket.localAddress;
    if (!local) return { ok: false, reason: "no_target_port" };
    return { ok: true, target: { host: unmapAddress(local), port } };
  }
}
