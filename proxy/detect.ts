/**
 * Protocol detection on a fresh connection, by reading its first bytes — never more than a
 * small bound: a TLS ClientHello, the HTTP/2 preface, an HTTP/1.x request line (any RFC 9110
 * token method followed by a space, after the empty lines RFC 9112 §2.2 lets a server skip),
 * other bytes, or silence.
 *
 * What is not HTTP may be relayed unread (an authorized peer's opaque stream, capture), so
 * whatever an HTTP server could read as a request must take the HTTP path, where the proxy's own
 * headers are stripped and the codec refuses what it does not accept: line ends of any kind
 * before a request line (llhttp skips a bare CR or LF too), and bytes that still could begin a
 * request line when the bound or the deadline ends detection (a client trickling its first bytes).
 *
 * Owns: the classification rules and the bounded read. Does not act on the result
 * (connection-policy.ts decides, listener.ts dispatches).
 */
import type { Socket } from "node:net";
import type { ConnectionProtocol } from "./connection-policy.ts";

export type Detected = Exclude<ConnectionProtocol, "opaque">;

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** Enough for some empty lines and a long extension method; detection never buffers past it. */
export const maxDetectBytes = 64;

/** RFC 9110 tchar, by byte. */
const tchar = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") {
  tchar[c.charCodeAt(0)] = 1;
}

/** Classifies the first bytes of a stream, or returns "incomplete" when more are needed. */
export function classify(prefix: Buffer, tlsOnly = false): Exclude<Detected, "silent"> | "incomplete" {
  if (prefix.length === 0) return "incomplete";
  // TLS record: handshake (22), protocol major version 3.
  if (prefix[0] === 0x16) return prefix.length < 2 ? "incomplete" : prefix[1] === 0x03 ? "tls" : "unknown";
  if (tlsOnly) return "unknown";
  const n = Math.min(prefix.length, h2Preface.length);
  if (prefix.subarray(0, n).equals(h2Preface.subarray(0, n))) {
    if (prefix.length < h2Preface.length) return "incomplete";
    return "h2";
  }
  let i = 0;
  while (prefix[i] === 13 || prefix[i] === 10) i++;
  const start = i;
  while (i < prefix.length && tchar[prefix[i]!] === 1) i++;
  if (i === prefix.length) return "incomplete";
  return i > start && prefix[i] === 0x20 ? "http/1.1" : "unknown";
}

/**
 * What bytes are when the bound or the deadline ends detection before `classify` could decide:
 * the start of a request line (line ends, a token, part of the HTTP/2 preface) is HTTP; a lone
 * TLS record type byte is not.
 */
function undecided(prefix: Buffer): Detected {
  return prefix[0] === 0x16 ? "unknown" : "http/1.1";
}

/**
 * Reads until the protocol is known or `timeoutMs` passes: "silent" when nothing came (a
 * server-first protocol may be waiting for us); bytes that were not enough to decide are
 * `undecided`.
 * With `tlsOnly`, only a TLS ClientHello is told apart (a port declared opaque). Resolves
 * undefined if the socket closes or errors first.
 */
export function detect(
  socket: Socket,
  timeoutMs: number,
  tlsOnly = false,
): Promise<{ protocol: Detected; prefix: Buffer } | undefined> {
  return new Promise((resolve) => {
    let prefix: Buffer = Buffer.alloc(0);
    const finish = (result: { protocol: Detected; prefix: Buffer } | undefined) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("end", onClose);
      socket.pause();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      prefix = prefix.length === 0 ? chunk : Buffer.concat([prefix, chunk]);
      const c = classify(prefix, tlsOnly);
      if (c !== "incomplete") finish({ protocol: c, prefix });
      else if (prefix.length >= maxDetectBytes) finish({ protocol: undecided(prefix), prefix });
    };
    const onClose = () => finish(undefined);
    const timer = setTimeout(
      () => finish({ protocol: prefix.length === 0 ? "silent" : undecided(prefix), prefix }),
      timeoutMs,
    );
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("end", onClose);
    socket.resume();
  });
}
