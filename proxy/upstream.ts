/**
 * What a client needs to reach one upstream: address, and for meshed peers the identity to
 * require and the TLS material to present.
 *
 * Owns: the target and client-TLS interfaces shared by client-h1.ts, client-h2.ts and
 * opaque.ts. Does not own certificates (local-identity.ts).
 */
import type { PeerCertificate, SecureContext, TLSSocket } from "node:tls";
import { encodeTransportHeader, type SessionProtocol, transportAlpn } from "./transport-header.ts";

/** ALPN protocol that tells the inbound proxy the stream is opaque TCP, not HTTP. */
export const opaqueAlpn = "trellis.opaque";

export interface ClientTls {
  /** Changes whenever the leaf or the trust bundle does; pools key connections by it. */
  readonly generation: number;
  /** Context holding our leaf chain, key and trust anchors; undefined before the first leaf. */
  clientContext(): SecureContext | undefined;
  /** A checkServerIdentity that accepts only certificates for `expected` (a SPIFFE ID). */
  verifierFor(expected: string): (host: string, cert: PeerCertificate) => Error | undefined;
}

export interface ClientLimits {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface UpstreamTarget {
  host: string;
  port: number;
  /** Required SPIFFE ID of the peer; undefined means plaintext. */
  identity: string | undefined;
  /**
   * Meshed peers: the port of the peer's pod the connection is for, sent in the transport
   * header (transport-header.ts). Undefined: no header (the peer forwards to its default).
   */
  targetPort?: number | undefined;
}

/** The pool key of a target without its TLS generation: one peer, identity and target port. */
export function targetPrefix(t: UpstreamTarget): string {
  return `${t.host}:${t.port}>${t.targetPort ?? ""}#${t.identity}@`;
}

export function targetKey(t: UpstreamTarget, generation: number): string {
  return t.identity === undefined ? `${t.host}:${t.port}` : `${targetPrefix(t)}${generation}`;
}

/** ALPN a client offers a meshed peer: the transport header first when it has a port to name. */
export function alpnFor(t: UpstreamTarget, legacy: string): string[] {
  return t.targetPort === undefined ? [legacy] : [transportAlpn, legacy];
}

/**
 * Right after the handshake, before any protocol byte: writes the transport header if the
 * peer selected it. Returns false when the peer selected neither it nor `legacy` (a server
 * that would misread the stream), so the caller closes the connection.
 */
export function startSession(
  socket: TLSSocket,
  t: UpstreamTarget,
  protocol: SessionProtocol,
  legacy: string,
  /** Called once the header (if any) is written out; HTTP/2 must not take the socket before. */
  written?: () => void,
): boolean {
  const selected = socket.alpnProtocol;
  if (selected === transportAlpn && t.targetPort !== undefined) {
    socket.write(encodeTransportHeader({ protocol, targetPort: t.targetPort }), written && (() => written()));
    return true;
  }
  if (selected !== legacy) return false;
  written?.();
  return true;
}
