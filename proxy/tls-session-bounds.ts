/**
 * TLS session resumption bounded by the certificates it was made with. A resumed session skips
 * certificate verification on both sides, so without a bound an expired leaf keeps opening
 * connections for as long as a ticket lives. Like Go's crypto/tls, Trellis refuses that:
 *
 * - client side: a ticket is kept with the earlier notAfter of the two certificates of the
 *   session it came from, and is not offered past it (a full handshake then verifies afresh);
 * - server side: an accepted session whose peer certificate (a resumed session still carries
 *   it) or whose local certificate is outside its validity is closed at once.
 *
 * Owns: those two checks. Does not own pools or listeners (h1-pool.ts, listener.ts call in).
 */
import type { PeerCertificate, TLSSocket } from "node:tls";

/** `valid_from` / `valid_to` of a certificate object as milliseconds, if it has them. */
function validity(cert: PeerCertificate | object | null): { from: number; to: number } | undefined {
  if (cert === null || !("valid_to" in cert) || typeof cert.valid_to !== "string") return undefined;
  const from = Date.parse(cert.valid_from);
  const to = Date.parse(cert.valid_to);
  return Number.isNaN(to) ? undefined : { from: Number.isNaN(from) ? 0 : from, to };
}

function outside(v: { from: number; to: number } | undefined, now: number): boolean {
  return v !== undefined && (now >= v.to || now < v.from);
}

/**
 * Which certificate of an accepted server-side mTLS session is not valid now: ours ("local")
 * or the client's ("peer"); undefined when both are. Full handshakes have had the peer checked
 * by OpenSSL already; resumed ones have not.
 */
export function expiredSessionCertificate(
  socket: TLSSocket,
  now: number = Date.now(),
): "local" | "peer" | undefined {
  if (outside(validity(socket.getCertificate()), now)) return "local";
  if (outside(validity(socket.getPeerCertificate()), now)) return "peer";
  return undefined;
}

/** Resumable sessions per pool key, each dropped once a certificate it was made with expires. */
export class SessionTickets {
  private readonly tickets = new Map<string, { ticket: Buffer; validUntil: number }>();

  constructor(private readonly max: number) {}

  /** A ticket still within the validity of its certificates, or none. */
  get(key: string, now: number = Date.now()): Buffer | undefined {
    const t = this.tickets.get(key);
    if (t === undefined) return undefined;
    if (now < t.validUntil) return t.ticket;
    this.tickets.delete(key);
    return undefined;
  }

  /**
   * Keeps the newest ticket of a client `socket`. A resumed connection shows no peer
   * certificate, so its ticket inherits the bound of the ticket it resumed from; a ticket whose
   * bound cannot be known is not kept.
   */
  keep(key: string, ticket: Buffer, socket: TLSSocket): void {
    const previous = this.tickets.get(key)?.validUntil;
    const peer =
      validity(socket.getPeerCertificate())?.to ?? (socket.isSessionReused() ? previous : undefined);
    const local = validity(socket.getCertificate())?.to;
    this.tickets.delete(key);
    if (peer === undefined || local === undefined) return;
    if (this.tickets.size >= this.max) this.tickets.delete(this.tickets.keys().next().value as string);
    this.tickets.set(key, { ticket, validUntil: Math.min(peer, local) });
  }

  delete(key: string): void {
    this.tickets.delete(key);
  }
}
