/**
 * Layer (inbound): the policy step. Requests from peers outside `authorizedIdentities` get
 * 403; every request reaches the application with the verified client identity in the
 * `trellis-client-id` header (any value a client sent itself was stripped on the way in).
 *
 * Owns: the inbound authorization decision. Does not verify identities (the TLS handshake did).
 */
import { type Layer, ProxyError } from "../handler.ts";
import { clientIdHeader } from "../headers.ts";

/** Exact SPIFFE IDs, or a prefix ending in "*" such as "spiffe://cluster.local/ns/web/*". */
export function identityAllowed(allowed: readonly string[], identity: string | undefined): boolean {
  if (identity === undefined) return false;
  return allowed.some((a) => (a.endsWith("*") ? identity.startsWith(a.slice(0, -1)) : a === identity));
}

export function authorizeClients(allowed: readonly string[] | undefined): Layer {
  return (next) => (req) => {
    const id = req.conn.peerIdentity;
    if (allowed !== undefined && !identityAllowed(allowed, id)) {
      return Promise.reject(new ProxyError("Forbidden", `client ${id ?? "(plaintext)"} is not authorized`));
    }
    if (id !== undefined) req.headers[clientIdHeader] = id;
    return next(req);
  };
}
