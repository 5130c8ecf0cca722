/**
 * Test fixture: peers that speak raw bytes, for input no well-behaved library would send — a
 * client (plain TCP or TLS with any certificate and ALPN) that writes exact bytes and collects
 * the answer, and an application that records every byte that reaches it and answers each
 * request with a scripted, possibly broken, response chosen by its path.
 */
import net, { type AddressInfo } from "node:net";
import tls from "node:tls";

export interface RawResult {
  text: string;
  /** The peer closed (or reset) the connection before `waitMs`. */
  closed: boolean;
  ms: number;
}

export interface RawOptions {
  /** Stop collecting once this holds. */
  until?: (text: string) => boolean;
  /** Give up (and close ourselves) after this long; default 5 s. */
  waitMs?: number;
  /** Stay silent this long after connecting before writing. */
  delayMs?: number;
  /** Half-close after writing. */
  end?: boolean;
  /** Connect with TLS (certificate, ALPN) instead of plain TCP. */
  tls?: tls.ConnectionOptions;
}

/** Connects to 127.0.0.1:`port`, writes `data` and collects what comes back. */
export function rawExchange(port: number, data: string | Buffer, o: RawOptions = {}): Promise<RawResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    let text = "";
    let done = false;
    const socket = o.tls
      ? tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...o.tls })
      : net.connect(port, "127.0.0.1");
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), o.waitMs ?? 5_000);
    const write = () => {
      socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
      if (o.end) socket.end();
    };
    socket.once(o.tls ? "secureConnect" : "connect", () => {
      if (o.delayMs) setTimeout(write, o.delayMs);
      else write();
    });
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      text += d;
      if (o.until?.(text)) finish(false);
    });
    socket.on("error", () => {});
    socket.on("close", () => finish(true));
  });
}

/** The number of HTTP/1.1 status lines in `text`. */
export function statusLines(text: string): string[] {
  return text.match(/HTTP\/1\.1 \d{3}/g) ?? [];
}

export interface HostileApp {
  port: number;
  /** Every byte received, on every connection, in order. */
  received(): string;
  /** Each request head received (up to its blank line). */
  heads: string[];
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

const forged = "HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nforged";

/** Broken responses from the findings of issue 18, by request path. */
export const hostileResponses: Readonly<Record<string, string>> = {
  // Both framings: a Content-Length: 0 response whose chunked body is a second response.
  "/te-cl": `HTTP/1.1 200 OK\r\ncontent-length: 0\r\ntransfer-encoding: chunked\r\n\r\n${forged.length.toString(16)}\r\n${forged}\r\n0\r\n\r\n`,
  // A whole response, then bytes that answer nothing (a second, unasked-for response).
  "/extra-bytes": `HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi${forged}`,
  "/lf-head": "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\nhi",
  "/ctrl-value": "HTTP/1.1 200 OK\r\nx-evil: a\u0001b\r\ncontent-length: 2\r\n\r\nhi",
  "/unsolicited-101": `HTTP/1.1 101 Switching Protocols\r\nupgrade: evil\r\nconnection: upgrade\r\n\r\n${forged}`,
  "/chunk-lf": "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n",
  "/chunk-ext-lf": "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2;a=b\nhi\r\n0\r\n\r\n",
  // A hostile application's own trellis-client-id, in its trailers rather than its head.
  "/owned-trailers":
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\ntrellis-client-id: spiffe://forged\r\nx-checksum: 1\r\n\r\n",
  // HTTP/1.0 knows no transfer codings: its framing is faulty, whatever it asks of the connection.
  "/http10-te":
    "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
};

/**
 * An application on raw TCP: records what reaches it, and answers each request head with
 * `hostileResponses[path]`, or else `200` and a body naming the method, path, host and
 * `trellis-client-id` it got. Request bodies (Content-Length or chunked) are skipped.
 */
export async function startHostileApp(): Promise<HostileApp> {
  let received = "";
  let connections = 0;
  const heads: string[] = [];
  const server = await listenTracked((socket) => {
    connections++;
    let buf = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      received += d;
      buf += d;
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = buf.slice(0, end);
        const bodyEnd = skipBody(head, buf, end + 4);
        if (bodyEnd === -1) return;
        buf = buf.slice(bodyEnd);
        heads.push(head);
        socket.write(Buffer.from(answer(head), "latin1"));
      }
    });
  });
  return { ...server, received: () => received, heads, connections: () => connections };
}

function field(head: string, name: string): string | undefined {
  const m = new RegExp(`\\r\\n${name}:[ \\t]*([^\\r]*)`, "i").exec(head);
  return m?.[1];
}

function skipBody(head: string, buf: string, from: number): number {
  if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
    const last = buf.indexOf("0\r\n\r\n", from);
    return last === -1 ? -1 : last + 5;
  }
  const length = Number(field(head, "content-length") ?? 0);
  return buf.length - from >= length ? from + length : -1;
}

function answer(head: string): string {
  const [method = "", path = ""] = head.split(" ");
  const scripted = hostileResponses[path];
  if (scripted) return scripted;
  const text = `${method} ${path} host=${field(head, "host") ?? "-"} client=${field(head, "trellis-client-id") ?? "-"}`;
  return `HTTP/1.1 200 OK\r\ncontent-length: ${text.length}\r\n\r\n${text}`;
}

/**
 * A TCP server on loopback that hands each connection to `onSocket` (errors ignored) and, on
 * close, destroys the connections still open.
 */
async function listenTracked(
  onSocket: (socket: net.Socket) => void,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onSocket(socket);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A server-first application (SMTP- or MySQL-like): greets every connection before reading. */
export function startGreetingApp(greeting: string): Promise<{ port: number; close(): Promise<void> }> {
  return listenTracked((socket) => {
    socket.write(greeting);
    socket.on("data", (d: Buffer) => socket.write(d));
  });
}

/** One HTTP/2 frame: length, type, flags, stream, payload (RFC 9113 §4.1). */
function h2Frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/**
 * An HTTP/2 application on raw frames (h2c, prior knowledge), for what node:http2 will not send:
 * each request stream is answered `:status: 200`, a DATA frame "ok" without END_STREAM, then
 * RST_STREAM with `resetCode` — a body cut short by the upstream.
 */
export async function startResettingH2App(
  resetCode: number,
): Promise<{ port: number; close(): Promise<void> }> {
  // HPACK: ":status: 200" is index 8 of the static table (RFC 7541 Appendix A).
  const status200 = Buffer.from([0x88]);
  const rst = Buffer.alloc(4);
  rst.writeUInt32BE(resetCode);
  return listenTracked((socket) => {
    socket.write(h2Frame(4, 0, 0));
    let buf = Buffer.alloc(0);
    let prefaceLeft = 24;
    socket.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const skip = Math.min(prefaceLeft, buf.length);
      buf = buf.subarray(skip);
      prefaceLeft -= skip;
      while (prefaceLeft === 0 && buf.length >= 9 && buf.length >= 9 + buf.readUIntBE(0, 3)) {
        const [type, flags, stream] = [buf[3]!, buf[4]!, buf.readUInt32BE(5) & 0x7fffffff];
        buf = buf.subarray(9 + buf.readUIntBE(0, 3));
        if (type === 4 && (flags & 1) === 0) socket.write(h2Frame(4, 1, 0));
        if (type !== 1) continue;
        socket.write(h2Frame(1, 4, stream, status200));
        socket.write(h2Frame(0, 0, stream, Buffer.from("ok")));
        socket.write(h2Frame(3, 0, stream, rst));
      }
    });
  });
}
