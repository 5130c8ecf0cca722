/**
 * What a client needs to reach one upstream: address, and for meshed peers the identity to
 * require and the TLS material to present.
 *
 * Owns: the target and client-TLS interfaces shared by client-h1.ts, client-h2.ts and
 * opaque.ts. Does not own certificates (local-identity.ts).
 */
import type { PeerCertificate, SecureContext } from "node:tls";

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
}

export function targetKey(t: UpstreamTarget, generation: number): string {
  return t.identity === undefined ? `${t.host}:${t.port}` : `${t.host}:${t.port}#${t.identity}@${generation}`;
}
