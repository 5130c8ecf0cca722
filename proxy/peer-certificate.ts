/**
 * Reading a TLS peer's identity from its certificate, through pki/ (never our own X.509
 * parsing), and the checkServerIdentity used between proxies.
 *
 * Owns: the SPIFFE identity check. Does not verify chains: OpenSSL does that against the
 * trust bundle in the secure context (rejectUnauthorized).
 */
import type { PeerCertificate } from "node:tls";
import { leafSpiffeId, parseCertificate } from "../pki/index.ts";

interface ParsedPeer {
  /** Only from a certificate that is an X.509-SVID leaf (`leafSpiffeId`): any other has none. */
  spiffeId: string | undefined;
  dnsNames: string[];
}

// Connections to the same peer present the same leaf; remember a few parses.
const cache = new Map<string, ParsedPeer>();
const cacheLimit = 256;

function parsePeer(cert: PeerCertificate | undefined): ParsedPeer | undefined {
  if (!cert?.raw || cert.raw.length === 0) return undefined;
  const key = cert.fingerprint256;
  const hit = cache.get(key);
  if (hit) return hit;
  try {
    const parsed = parseCertificate(cert.raw);
    const peer: ParsedPeer = { spiffeId: leafSpiffeId(cert.raw), dnsNames: parsed.dnsNames };
    if (cache.size >= cacheLimit) cache.delete(cache.keys().next().value as string);
    cache.set(key, peer);
    return peer;
  } catch {
    return undefined;
  }
}

export function peerSpiffeId(cert: PeerCertificate | undefined): string | undefined {
  return parsePeer(cert)?.spiffeId;
}

export function peerDnsNames(cert: PeerCertificate | undefined): string[] {
  return parsePeer(cert)?.dnsNames ?? [];
}

/** checkServerIdentity for proxy-to-proxy mTLS: the peer must be exactly `expected`. */
export function spiffeVerifier(expected: string) {
  return (_host: string, cert: PeerCertificate): Error | undefined => {
    const id = peerSpiffeId(cert);
    return id === expected ? undefined : new Error(`peer identity ${id ?? "(none)"} is not ${expected}`);
  };
}
