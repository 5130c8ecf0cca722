/**
 * The connection policy as a table: one row per line of docs/proxy.md "Connection policy"
 * (transport × peer × protocol → what the application receives). trust-boundary.test.ts checks
 * the same rows through real processes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Admission,
  admitConnection,
  type ConnectionFacts,
  type ConnectionProtocol,
  type InboundPolicy,
} from "../connection-policy.ts";

const meshed = "spiffe://td/ns/shop/sa/web";
const other = "spiffe://td/ns/evil/sa/x";
const policy: InboundPolicy = { allowPlaintext: true, authorizedIdentities: ["spiffe://td/ns/shop/*"] };
const open: InboundPolicy = { allowPlaintext: true, authorizedIdentities: undefined };
const mtlsOnly: InboundPolicy = { allowPlaintext: false, authorizedIdentities: undefined };

function facts(
  transport: "mtls" | "plaintext",
  peer: string | undefined,
  protocol: ConnectionProtocol,
  o: Partial<ConnectionFacts> = {},
): ConnectionFacts {
  return {
    direction: "inbound",
    transport,
    peerIdentity: peer,
    protocol,
    peerAskedOpaque: false,
    opaqueDestination: false,
    ...o,
  };
}

const serve = (protocol: "http/1.1" | "h2"): Admission => ({ verdict: "serve", protocol });
const relay: Admission = { verdict: "relay" };
const forbid = (protocol: "http/1.1" | "h2"): Admission => ({
  verdict: "forbid",
  protocol,
  reason: "unauthorized",
});
const refuse = (reason: string, answer = false): Admission =>
  ({ verdict: "refuse", reason, answer }) as Admission;

describe("connection policy", () => {
  const inbound: [string, ConnectionFacts, InboundPolicy, Admission][] = [
    ["mTLS, authorized, HTTP/1.1", facts("mtls", meshed, "http/1.1"), policy, serve("http/1.1")],
    ["mTLS, authorized, HTTP/2", facts("mtls", meshed, "h2"), policy, serve("h2")],
    ["mTLS, refused identity, HTTP/1.1", facts("mtls", other, "http/1.1"), policy, forbid("http/1.1")],
    ["mTLS, refused identity, HTTP/2", facts("mtls", other, "h2"), policy, forbid("h2")],
    [
      "mTLS, authorized, opaque ALPN, bytes",
      facts("mtls", meshed, "unknown", { peerAskedOpaque: true }),
      policy,
      relay,
    ],
    [
      "mTLS, authorized, opaque ALPN, silence",
      facts("mtls", meshed, "silent", { peerAskedOpaque: true }),
      policy,
      relay,
    ],
    [
      "mTLS, authorized, opaque ALPN, HTTP inside",
      facts("mtls", meshed, "http/1.1", { peerAskedOpaque: true }),
      policy,
      serve("http/1.1"),
    ],
    [
      "mTLS, refused identity, opaque ALPN",
      facts("mtls", other, "unknown", { peerAskedOpaque: true }),
      policy,
      refuse("unauthorized"),
    ],
    [
      "mTLS, refused identity, opaque port",
      facts("mtls", other, "opaque", { peerAskedOpaque: true, opaqueDestination: true }),
      policy,
      refuse("unauthorized"),
    ],
    [
      "plaintext, not allowed",
      facts("plaintext", undefined, "http/1.1"),
      mtlsOnly,
      refuse("plaintext_not_allowed"),
    ],
    ["plaintext, a policy set, HTTP", facts("plaintext", undefined, "http/1.1"), policy, forbid("http/1.1")],
    [
      "plaintext, a policy set, bytes",
      facts("plaintext", undefined, "unknown"),
      policy,
      refuse("unauthorized"),
    ],
    [
      "plaintext, a policy set, opaque port",
      facts("plaintext", undefined, "opaque", { opaqueDestination: true }),
      policy,
      refuse("unauthorized"),
    ],
    ["plaintext, no policy, HTTP", facts("plaintext", undefined, "http/1.1"), open, serve("http/1.1")],
    ["plaintext, no policy, h2c", facts("plaintext", undefined, "h2"), open, serve("h2")],
    [
      "plaintext, no policy, bytes",
      facts("plaintext", undefined, "unknown"),
      open,
      refuse("unrecognised_protocol", true),
    ],
    ["plaintext, no policy, silence", facts("plaintext", undefined, "silent"), open, refuse("silent_client")],
    [
      "plaintext, no policy, TLS not from a peer",
      facts("plaintext", undefined, "tls"),
      open,
      refuse("unrecognised_protocol"),
    ],
    [
      "plaintext, no policy, opaque port, bytes",
      facts("plaintext", undefined, "unknown", { opaqueDestination: true }),
      open,
      relay,
    ],
    [
      "plaintext, no policy, opaque port, silence",
      facts("plaintext", undefined, "silent", { opaqueDestination: true }),
      open,
      relay,
    ],
    [
      "a peer's identity does not count over plaintext",
      facts("plaintext", meshed, "http/1.1"),
      policy,
      forbid("http/1.1"),
    ],
  ];
  for (const [name, f, p, expected] of inbound) {
    it(`inbound: ${name}`, () => assert.deepEqual(admitConnection(f, p), expected));
  }

  const outbound: [string, ConnectionProtocol, boolean, Admission][] = [
    ["HTTP/1.1", "http/1.1", false, serve("http/1.1")],
    ["h2c", "h2", false, serve("h2")],
    ["bytes, no opaque destination", "unknown", false, refuse("unrecognised_protocol", true)],
    ["silence, no opaque destination", "silent", false, refuse("silent_client")],
    ["the application's TLS, no opaque destination", "tls", false, refuse("opaque_not_configured")],
    ["bytes to an opaque destination", "unknown", true, relay],
    ["the application's TLS to an opaque destination", "tls", true, relay],
    ["a port declared opaque", "opaque", true, relay],
  ];
  for (const [name, protocol, opaqueDestination, expected] of outbound) {
    it(`outbound: ${name}`, () => {
      const f = facts("plaintext", undefined, protocol, { direction: "outbound", opaqueDestination });
      assert.deepEqual(admitConnection(f, undefined), expected);
    });
  }
});
