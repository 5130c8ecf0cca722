/**
 * The transport header: how a client proxy tells the server proxy, inside mutual TLS, which
 * port of the server's pod the connection is for and which protocol follows — so one inbound
 * port (4143) serves every application port, and the server needs no protocol detection.
 *
 * Negotiated by ALPN: a client offers `trellis.transport/1` before its legacy protocol; a
 * server that knows the header selects it, an older one selects the legacy value and the
 * client sends no header (mixed versions during a rollout work both ways). With it selected,
 * the client's first 8 bytes inside TLS are:
 *
 *   "TRTP" | version 0x01 | protocol (1 http/1.1, 2 h2, 3 opaque) | target port (u16, big-endian)
 *
 * Owns: the byte format, and reading it with a deadline. Does not decide whether a port may be
 * reached (inbound-target.ts): the peer is authenticated, but what it names is still input.
 */
import type { Socket } from "node:net";

export const transportAlpn = "trellis.transport/1";
export type SessionProtocol = "http/1.1" | "h2" | "opaque";
export const transportHeaderLength = 8;

const magic = Buffer.from("TRTP", "latin1");
const version = 1;
const protocolCodes: Record<SessionProtocol, number> = { "http/1.1": 1, h2: 2, opaque: 3 };
const protocolsByCode: readonly (SessionProtocol | undefined)[] = [undefined, "http/1.1", "h2", "opaque"];

export interface TransportHeader {
  protocol: SessionProtocol;
  targetPort: number;
}

export function encodeTransportHeader(h: TransportHeader): Buffer {
  if (!Number.isInteger(h.targetPort) || h.targetPort < 1 || h.targetPort > 65535) {
    throw new RangeError(`target port ${h.targetPort} is not 1-65535`);
  }
  const b = Buffer.alloc(transportHeaderLength);
  magic.copy(b, 0);
  b[4] = version;
  b[5] = protocolCodes[h.protocol];
  b.writeUInt16BE(h.targetPort, 6);
  return b;
}

/** Decodes exactly one header; a reason string when the bytes are not one. */
export function decodeTransportHeader(b: Buffer): TransportHeader | string {
  if (b.length < transportHeaderLength) return "short header";
  if (!b.subarray(0, 4).equals(magic)) return "bad magic";
  if (b[4] !== version) return `unknown version ${b[4]}`;
  const protocol = protocolsByCode[b[5]!];
  if (!protocol) return `unknown protocol ${b[5]}`;
  const targetPort = b.readUInt16BE(6);
  if (targetPort === 0) return "target port 0";
  return { protocol, targetPort };
}

/**
 * Reads the header from a socket whose peer selected `transportAlpn`, within `timeoutMs`.
 * Resolves the header and any bytes that came after it (to be unshifted or handed on), or a
 * reason when the peer sent something else, closed, or was too slow.
 */
export function readTransportHeader(
  socket: Socket,
  timeoutMs: number,
): Promise<{ header: TransportHeader; rest: Buffer } | { error: string }> {
  return new Promise((resolve) => {
    let got: Buffer = Buffer.alloc(0);
    const finish = (r: { header: TransportHeader; rest: Buffer } | { error: string }) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("end", onClose);
      socket.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      if (got.length < transportHeaderLength) return;
      const h = decodeTransportHeader(got);
      if (typeof h === "string") finish({ error: h });
      else finish({ header: h, rest: got.subarray(transportHeaderLength) });
    };
    const onClose = () => finish({ error: "closed before the header" });
    const timer = setTimeout(() => finish({ error: "no header in time" }), timeoutMs);
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("end", onClose);
    socket.resume();
  });
}
