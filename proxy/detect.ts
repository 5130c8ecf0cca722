/**
 * Protocol detection on a fresh connection: TLS, HTTP/2 (prior knowledge preface), HTTP/1.x
 * or anything else (opaque TCP), by reading the first bytes — never more than a small bound.
 *
 * Owns: the classification rules and the bounded read. Does not act on the result
 * (listener.ts).
 */
import type { Socket } from "node:net";

export type Detected = "tls" | "h2" | "http/1.1" | "opaque";

const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const methods = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]);
const maxMethodLength = 7;
/** More than enough for every rule below; detection never buffers past it. */
export const maxDetectBytes = h2Preface.length;

/** Classifies the first bytes of a stream, or returns "incomplete" when more are needed. */
export function classify(prefix: Buffer): Detected | "incomplete" {
  if (prefix.length === 0) return "incomplete";
  // TLS record: handshake (22), protocol major version 3.
  if (prefix[0] === 0x16) return prefix.length < 2 ? "incomplete" : prefix[1] === 0x03 ? "tls" : "opaque";
  const n = Math.min(prefix.length, h2Preface.length);
  if (prefix.subarray(0, n).equals(h2Preface.subarray(0, n))) {
    return prefix.length >= h2Preface.length ? "h2" : "incomplete";
  }
  const space = prefix.indexOf(0x20);
  if (space === -1) {
    if (prefix.length > maxMethodLength) return "opaque";
    for (const c of prefix) if (c < 0x41 || c > 0x5a) return "opaque";
    return "incomplete";
  }
  return methods.has(prefix.toString("latin1", 0, space)) ? "http/1.1" : "opaque";
}

/**
 * Reads until the protocol is known or `timeoutMs` passes. A client that sends nothing in
 * time may speak a server-first protocol, so silence is "opaque" with an empty prefix.
 * Resolves undefined if the socket closes or errors first.
 */
export function detect(
  socket: Socket,
  timeoutMs: number,
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
      const c = classify(prefix);
      if (c !== "incomplete") finish({ protocol: c, prefix });
      else if (prefix.length >= maxDetectBytes) finish({ protocol: "opaque", prefix });
    };
    const onClose = () => finish(undefined);
    const timer = setTimeout(() => finish({ protocol: "opaque", prefix }), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("end", onClose);
    socket.resume();
  });
}
