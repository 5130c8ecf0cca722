/**
 * Header hygiene at the proxy boundary: which headers are per-hop and must not be forwarded,
 * which are the proxy's own (and so stripped from untrusted input), and copying Node's
 * header objects into the stack's `Headers`.
 *
 * Owns: header filtering rules. Does not own request routing or any I/O.
 */
import type { Headers } from "./handler.ts";

/** Connection-specific headers (RFC 9110 §7.6.1; forbidden in HTTP/2 by RFC 9113 §8.2.2). */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

/**
 * The proxy owns every header named `trellis-*`: it sets them, and never takes one from a client.
 * Every request arriving at either listener, over any HTTP version, loses them on the way in
 * (`forwardableRequestHeaders`), so a value the application sees was set by the proxy. So do
 * their spellings with `_` (`trellis_client_id`): CGI-style servers (WSGI, Rack, PHP) read
 * `-` and `_` alike, both as `HTTP_TRELLIS_CLIENT_ID`.
 */
export const ownedHeaderPrefix = "trellis-";
const ownedHeaderCgiPrefix = "trellis_";
/** Header the inbound proxy sets to the verified client identity. */
export const clientIdHeader = "trellis-client-id";
/** Header the proxy adds when it answered itself rather than the upstream. */
export const proxyErrorHeader = "trellis-proxy-error";

export function isOwnedHeader(name: string): boolean {
  if (name.charCodeAt(0) !== 116 /* "t" */) return false;
  return name.startsWith(ownedHeaderPrefix) || name.startsWith(ownedHeaderCgiPrefix);
}

/**
 * Copies the headers of a request from a client: pseudo-headers, hop-by-hop headers, headers
 * named by `Connection`, `TE` other than "trailers", and every header the proxy owns are dropped.
 */
export function forwardableRequestHeaders(src: Record<string, string | string[] | undefined>): Headers {
  return copyHeaders(src, true);
}

/**
 * Copies the headers of a response from an upstream, as requests are copied, except that the
 * proxy's own `trellis-proxy-error` from a peer proxy passes (it tells the client why the peer
 * answered); `trellis-client-id` is dropped.
 */
export function forwardableResponseHeaders(src: Record<string, string | string[] | undefined>): Headers {
  return copyHeaders(src, false);
}

function copyHeaders(src: Record<string, string | string[] | undefined>, request: boolean): Headers {
  const out: Headers = {};
  const connection = src.connection;
  const named =
    typeof connection === "string" && connection !== "" ? connectionTokens(connection) : undefined;
  for (const name in src) {
    if (name.charCodeAt(0) === 58 /* ":" */ || hopByHop.has(name)) continue;
    if (request ? isOwnedHeader(name) : name === clientIdHeader) continue;
    if (named?.has(name)) continue;
    const v = src[name];
    if (v === undefined) continue;
    if (name === "te") {
      if (String(v).toLowerCase().includes("trailers")) out.te = "trailers";
      continue;
    }
    out[name] = v;
  }
  return out;
}

function connectionTokens(value: string): Set<string> {
  return new Set(value.split(",").map((t) => t.trim().toLowerCase()));
}

/**
 * Copies the trailers of a response from an upstream: no pseudo-headers or framing headers, and,
 * as in response headers, no `trellis-client-id` (request trailers are not forwarded at all).
 */
export function forwardableTrailers(src: Record<string, string | string[] | undefined>): Headers | undefined {
  let out: Headers | undefined;
  for (const name in src) {
    if (name.charCodeAt(0) === 58 || hopByHop.has(name) || name === "content-length") continue;
    if (name === clientIdHeader) continue;
    const v = src[name];
    if (v === undefined) continue;
    out ??= {};
    out[name] = v;
  }
  return out;
}
