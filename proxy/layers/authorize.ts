/**
 * Layer (inbound): the verified client identity, as the application receives it. Every request
 * reaches the application with the peer proxy's SPIFFE ID in `trellis-client-id`, or without the
 * header for a plaintext client (a value a client sent itself never gets this far: every
 * `trellis-*` request header is stripped where requests are read, headers.ts).
 *
 * The policy itself is decided once per connection, before any protocol path
 * (connection-policy.ts, applied by listener.ts); connections it refuses never reach this stack.
 * The check here is defence in depth, with the same function: a request on a connection that
 * bypassed the listener would still be refused.
 *
 * Owns: setting the identity header. Does not verify identities (the TLS handshake did).
 */
import { type InboundPolicy, peerAuthorized } from "../connection-policy.ts";
import { type Layer, ProxyError } from "../handler.ts";
import { clientIdHeader } from "../headers.ts";

export function identifyClients(policy: InboundPolicy): Layer {
  return (next) => (req) => {
    const id = req.conn.peerIdentity;
    if (!peerAuthorized(policy, id)) return Promise.reject(forbidden(id));
    if (id !== undefined) req.headers[clientIdHeader] = id;
    return next(req);
  };
}

export function forbidden(id: string | undefined): ProxyError {
  return new ProxyError("Forbidden", `client ${id ?? "(plaintext)"} is not authorized`);
}
