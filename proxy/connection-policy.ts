/**
 * Who may send what through a listener: one decision per connection, made once its transport,
 * its verified peer identity (or the absence of one) and its protocol are known, and before any
 * byte reaches an application. Every path — HTTP/1.1, HTTP/2, opaque TCP — is chosen from this
 * decision (listener.ts), so a new path cannot skip it. The table it implements is in
 * docs/proxy.md ("Connection policy").
 *
 * Owns: the policy, as a pure function over facts about the connection. Does not read sockets,
 * verify certificates (the TLS handshake did) or answer anyone (listener.ts, stacks.ts).
 */
import type { Direction } from "./handler.ts";

/** What the first bytes of a connection are, after TLS where the listener terminated it. */
export type ConnectionProtocol =
  /** An HTTP/1.x request line (any token method) or the HTTP/2 preface, or ALPN h2 / http/1.1. */
  | "http/1.1"
  | "h2"
  /** A TLS ClientHello this listener does not terminate (outbound: an application's own TLS). */
  | "tls"
  /** Bytes that are none of the above. */
  | "unknown"
  /** Nothing within the detection deadline: a server-first protocol, or an idle client. */
  | "silent"
  /** Not inspected: the target port is declared opaque. */
  | "opaque";

export interface ConnectionFacts {
  direction: Direction;
  transport: "mtls" | "plaintext";
  /** The peer proxy's SPIFFE ID, verified by the mTLS handshake; undefined for plaintext. */
  peerIdentity: string | undefined;
  protocol: ConnectionProtocol;
  /** A peer proxy asked for an opaque stream (ALPN `trellis.opaque`). */
  peerAskedOpaque: boolean;
  /**
   * Non-HTTP bytes on this connection have a declared destination: the target port is in the
   * listener's `opaquePorts` (or, outbound, `outbound.opaqueAuthority` is configured).
   */
  opaqueDestination: boolean;
}

export interface InboundPolicy {
  /** Accept connections that are not mTLS from a peer proxy. */
  allowPlaintext: boolean;
  /** Exact SPIFFE IDs or prefixes ending in "*"; undefined admits every verified peer and plaintext. */
  authorizedIdentities: readonly string[] | undefined;
}

/** Why a connection is closed or its requests refused; the `reason` label of the metrics. */
export type RefusalReason =
  | "plaintext_not_allowed"
  | "unauthorized"
  | "unrecognised_protocol"
  | "silent_client"
  | "opaque_not_configured";

export type Admission =
  /** Requests go through the stack to the application or the mesh. */
  | { verdict: "serve"; protocol: "http/1.1" | "h2" }
  /** Bytes are relayed unchanged: no headers exist to strip or set, the policy admitted the peer. */
  | { verdict: "relay" }
  /** HTTP from a peer the policy refuses: the proxy answers every request 403 itself. */
  | { verdict: "forbid"; protocol: "http/1.1" | "h2"; reason: "unauthorized" }
  /** Closed; `answer` says a 400 is written first (the client sent bytes that may be a request). */
  | { verdict: "refuse"; reason: RefusalReason; answer: boolean };

/** Exact SPIFFE IDs, or a prefix ending in "*" such as "spiffe://cluster.local/ns/web/*". */
export function identityAllowed(allowed: readonly string[], identity: string | undefined): boolean {
  if (identity === undefined) return false;
  return allowed.some((a) => (a.endsWith("*") ? identity.startsWith(a.slice(0, -1)) : a === identity));
}

/** Whether the policy lets `peerIdentity` (undefined: a plaintext client) reach the application. */
export function peerAuthorized(policy: InboundPolicy, peerIdentity: string | undefined): boolean {
  return (
    policy.authorizedIdentities === undefined || identityAllowed(policy.authorizedIdentities, peerIdentity)
  );
}

function isHttp(p: ConnectionProtocol): p is "http/1.1" | "h2" {
  return p === "http/1.1" || p === "h2";
}

/**
 * The decision. Outbound traffic comes from the application beside the proxy: HTTP is served,
 * anything else is relayed only to a declared opaque destination. Inbound traffic crosses the
 * trust boundary: plaintext only where allowed, then the identity policy for every protocol,
 * and bytes that are not HTTP flow only when a verified peer proxy asked for an opaque stream or
 * the port is declared opaque.
 */
export function admitConnection(facts: ConnectionFacts, policy: InboundPolicy | undefined): Admission {
  const { protocol } = facts;
  if (facts.direction === "outbound") {
    if (isHttp(protocol)) return { verdict: "serve", protocol };
    if (facts.opaqueDestination) return { verdict: "relay" };
    return notHttp(protocol, "opaque_not_configured");
  }
  if (policy === undefined) return { verdict: "refuse", reason: "unauthorized", answer: false };
  if (facts.transport === "plaintext" && !policy.allowPlaintext) {
    return { verdict: "refuse", reason: "plaintext_not_allowed", answer: false };
  }
  const authorized = peerAuthorized(policy, facts.transport === "mtls" ? facts.peerIdentity : undefined);
  if (isHttp(protocol)) {
    return authorized
      ? { verdict: "serve", protocol }
      : { verdict: "forbid", protocol, reason: "unauthorized" };
  }
  if (!authorized) return { verdict: "refuse", reason: "unauthorized", answer: false };
  if ((facts.transport === "mtls" && facts.peerAskedOpaque) || facts.opaqueDestination) {
    return { verdict: "relay" };
  }
  return notHttp(protocol, "unrecognised_protocol");
}

/** Refuses bytes that are not HTTP; `tlsReason` for a TLS ClientHello nobody here terminates. */
function notHttp(protocol: ConnectionProtocol, tlsReason: RefusalReason): Admission {
  if (protocol === "silent") return { verdict: "refuse", reason: "silent_client", answer: false };
  // Bytes that could be a broken request get a 400; a TLS ClientHello could not read one.
  if (protocol === "unknown") return { verdict: "refuse", reason: "unrecognised_protocol", answer: true };
  return { verdict: "refuse", reason: tlsReason, answer: false };
}
