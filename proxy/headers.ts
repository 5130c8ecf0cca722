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

/** Header the inbound proxy sets to the verified client identity; never trusted from input. */
export const clientIdHeader = "trellis-client-id";
/** Header the proxy adds when it answered itself rather than the upstream. */
export const proxyErrorHeader = "trellis-proxy-error";

/**
 * Copies request or response headers, dropping pseudo-headers, hop-by-hop headers, headers
 * named by `Connection`, `TE` other than "trailers", and the proxy's own identity header.
 */
export function forwardableHeaders(src: Record<string, string | string[] | undefined>): Headers {
  const out: Headers = {};
  const connection = src.connection;
  const named =
    typeof connection === "string" && connection !== "" ? connectionTokens(connection) : undefined;
  for (const name in src) {
    if (name.charCodeAt(0) === 58 /* ":" */ || hopByHop.has(name) || name === clientIdHeader) continue;
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

/** Trailers may not carry pseudo-headers or framing headers. */
export function forwardableTrailers(src: Record<string, string | string[] | undefined>): Headers | undefined {
  let out: Headers | undefined;
  for (const name in src) {
    if (name.charCodeAt(0) === 58 || hopByHop.has(name) || name === "content-length") continue;
    const v = src[name];
    if (v === undefined) continue;
    out ??= {};
    out[name] = v;
  }
  return out;
}
