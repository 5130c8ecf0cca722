/**
 * The HTTP/1.1 wire format for the proxy's client side: serializing a request head, parsing
 * a response head incrementally with a size bound, deciding how the body is framed, and
 * decoding a chunked body (with trailers) as it streams.
 *
 * Owns: syntax only, as pure functions and a small state machine. Does not touch sockets
 * (client-h1.ts).
 */
import type { Headers } from "./handler.ts";

export interface ResponseHead {
  status: number;
  headers: Headers;
  /** False for HTTP/1.0 without keep-alive or an explicit `connection: close`. */
  keepAlive: boolean;
}

export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

export class H1SyntaxError extends Error {}

const crlfcrlf = Buffer.from("\r\n\r\n");

function hasLineBreak(v: string): boolean {
  return v.includes("\n") || v.includes("\r");
}

/** Builds the request head; throws H1SyntaxError on a value that would split the head. */
export function serializeRequestHead(
  method: string,
  path: string,
  authority: string,
  headers: Headers,
  framing: string,
): string {
  if (hasLineBreak(path) || hasLineBreak(authority) || path.includes(" "))
    throw new H1SyntaxError("bad request target");
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${authority}\r\n`;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || name === "content-length" || name === "te") continue;
    if (typeof v === "string") {
      if (hasLineBreak(v)) throw new H1SyntaxError(`bad value for header ${name}`);
      head += `${name}: ${v}\r\n`;
    } else {
      for (const item of v) {
        if (hasLineBreak(item)) throw new H1SyntaxError(`bad value for header ${name}`);
        head += `${name}: ${item}\r\n`;
      }
    }
  }
  return `${head}${framing}\r\n`;
}

function addHeader(headers: Headers, name: string, value: string): void {
  const prev = headers[name];
  if (prev === undefined) headers[name] = value;
  else if (typeof prev === "string")
    headers[name] = name === "set-cookie" ? [prev, value] : `${prev}, ${value}`;
  else prev.push(value);
}

/** Parses header lines `lines[from..]` into `headers`; throws on a malformed line. */
export function parseHeaderLines(lines: string[], from: number, headers: Headers): void {
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
      throw new H1SyntaxError("malformed header line");
    }
    addHeader(headers, line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
}

/**
 * Parses a response head at the start of `buf`. Returns undefined when more bytes are needed;
 * throws when the head is malformed or longer than `maxBytes`.
 */
export function parseResponseHead(
  buf: Buffer,
  maxBytes: number,
): { head: ResponseHead; consumed: number } | undefined {
  const end = buf.indexOf(crlfcrlf);
  if (end === -1) {
    if (buf.length > maxBytes) throw new H1SyntaxError(`response head longer than ${maxBytes} bytes`);
    return undefined;
  }
  if (end > maxBytes) throw new H1SyntaxError(`response head longer than ${maxBytes} bytes`);
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const statusLine = lines[0]!;
  if (!statusLine.startsWith("HTTP/1.") || (statusLine.length > 12 && statusLine.charCodeAt(12) !== 32)) {
    throw new H1SyntaxError("malformed status line");
  }
  const status = Number(statusLine.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || status > 999)
    throw new H1SyntaxError("malformed status code");
  const headers: Headers = {};
  parseHeaderLines(lines, 1, headers);
  const connection = String(headers.connection ?? "").toLowerCase();
  const keepAlive = statusLine.startsWith("HTTP/1.1")
    ? !connection.includes("close")
    : connection.includes("keep-alive");
  return { head: { status, headers, keepAlive }, consumed: end + 4 };
}

/** How the response body is delimited (RFC 9112 §6.3). */
export function responseFraming(method: string, head: ResponseHead): Framing {
  const s = head.status;
  if (method === "HEAD" || s === 204 || s === 304 || (s >= 100 && s < 200)) return { kind: "none" };
  const te = head.headers["transfer-encoding"];
  if (te !== undefined) {
    if (String(te).toLowerCase().trim().endsWith("chunked")) return { kind: "chunked" };
    return { kind: "close" };
  }
  const cl = head.headers["content-length"];
  if (cl !== undefined) {
    const values = String(cl)
      .split(",")
      .map((v) => v.trim());
    const n = Number(values[0]);
    if (!/^\d+$/.test(values[0]!) || values.some((v) => v !== values[0])) {
      throw new H1SyntaxError("invalid content-length");
    }
    return n === 0 ? { kind: "none" } : { kind: "length", length: n };
  }
  return { kind: "close" };
}

type ChunkState = "size" | "data" | "dataEnd" | "trailers" | "done";

/** Streaming chunked-body decoder; bounded: size lines and trailers may not exceed `maxLine`. */
export class ChunkedDecoder {
  private state: ChunkState = "size";
  private remaining = 0;
  private line = "";
  private trailerLines: string[] = [];
  trailers: Headers | undefined;

  constructor(private readonly maxLine = 16 * 1024) {}

  get done(): boolean {
    return this.state === "done";
  }

  /** Decodes `buf`, calling `onData` for body bytes. Returns bytes consumed (rest belongs to no one). */
  feed(buf: Buffer, onData: (chunk: Buffer) => void): number {
    let i = 0;
    while (i < buf.length && this.state !== "done") {
      if (this.state === "data") {
        const n = Math.min(this.remaining, buf.length - i);
        onData(buf.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = "dataEnd";
        continue;
      }
      const nl = buf.indexOf(10, i);
      const end = nl === -1 ? buf.length : nl + 1;
      this.line += buf.toString("latin1", i, end);
      i = end;
      if (this.line.length > this.maxLine) throw new H1SyntaxError("chunk line too long");
      if (nl === -1) break;
      const line = this.line.replace(/\r?\n$/, "");
      this.line = "";
      this.onLine(line);
    }
    return i;
  }

  private onLine(line: string): void {
    if (this.state === "dataEnd") {
      if (line !== "") throw new H1SyntaxError("missing CRLF after chunk");
      this.state = "size";
    } else if (this.state === "size") {
      const hex = line.split(";")[0]!.trim();
      if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) throw new H1SyntaxError("bad chunk size");
      this.remaining = Number.parseInt(hex, 16);
      this.state = this.remaining === 0 ? "trailers" : "data";
    } else if (this.state === "trailers") {
      if (line === "") {
        if (this.trailerLines.length > 0) {
          this.trailers = {};
          parseHeaderLines(this.trailerLines, 0, this.trailers);
        }
        this.state = "done";
      } else {
        this.trailerLines.push(line);
        if (this.trailerLines.length > 100) throw new H1SyntaxError("too many trailers");
      }
    }
  }
}

export interface RequestHead {
  method: string;
  target: string;
  headers: Headers;
  /** Whether the client allows the connection to stay open after this exchange. */
  keepAlive: boolean;
}

export type RequestFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const targetPattern = /^[\x21-\x7e]+$/;
/** Field values may hold visible characters, spaces and tabs only (RFC 9110 §5.5). */
function hasControlCharacter(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/**
 * Parses a request head at the start of `buf` (RFC 9112 §3). Returns undefined when more
 * bytes are needed; throws H1SyntaxError when malformed, and HeadTooLarge past `maxBytes`.
 */
export function parseRequestHead(
  buf: Buffer,
  maxBytes: number,
): { head: RequestHead; consumed: number } | undefined {
  const end = buf.indexOf(crlfcrlf);
  if (end === -1) {
    if (buf.length > maxBytes) throw new HeadTooLarge();
    return undefined;
  }
  if (end > maxBytes) throw new HeadTooLarge();
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const parts = lines[0]!.split(" ");
  if (parts.length !== 3) throw new H1SyntaxError("malformed request line");
  const [method, target, version] = parts as [string, string, string];
  if (!tokenPattern.test(method) || !targetPattern.test(target))
    throw new H1SyntaxError("malformed request line");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") throw new H1SyntaxError("unsupported HTTP version");
  const headers: Headers = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    if (!tokenPattern.test(name)) throw new H1SyntaxError("malformed header line");
    const value = line.slice(colon + 1).trim();
    if (hasControlCharacter(value)) throw new H1SyntaxError("control character in header value");
    addHeader(headers, name.toLowerCase(), value);
  }
  const connection = String(headers.connection ?? "").toLowerCase();
  const keepAlive =
    version === "HTTP/1.1" ? !connection.includes("close") : connection.includes("keep-alive");
  return { head: { method, target, headers, keepAlive }, consumed: end + 4 };
}

export class HeadTooLarge extends H1SyntaxError {}

/** Request body framing; ambiguous framing (a request smuggling vector) is refused. */
export function requestFraming(headers: Headers): RequestFraming {
  const te = headers["transfer-encoding"];
  const cl = headers["content-length"];
  if (te !== undefined) {
    if (cl !== undefined) throw new H1SyntaxError("both transfer-encoding and content-length");
    if (String(te).toLowerCase().trim() !== "chunked")
      throw new H1SyntaxError("unsupported transfer-encoding");
    return { kind: "chunked" };
  }
  if (cl === undefined) return { kind: "none" };
  const values = String(cl)
    .split(",")
    .map((v) => v.trim());
  if (!/^\d{1,15}$/.test(values[0]!) || values.some((v) => v !== values[0])) {
    throw new H1SyntaxError("invalid content-length");
  }
  const length = Number(values[0]);
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}

/** Builds a response head; values that would split the head are dropped, not sent. */
export function serializeResponseHead(
  status: number,
  reason: string,
  headers: Headers,
  extra: string,
): string {
  return `${serializeFields(`HTTP/1.1 ${status} ${reason}\r\n`, headers)}${extra}\r\n`;
}

/** The last chunk of a chunked body, with trailers. */
export function serializeLastChunk(trailers: Headers | undefined): string {
  return `${trailers ? serializeFields("0\r\n", trailers) : "0\r\n"}\r\n`;
}

function serializeFields(start: string, headers: Headers): string {
  let head = start;
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === "string") {
      if (!hasLineBreak(v)) head += `${name}: ${v}\r\n`;
    } else {
      for (const item of v) if (!hasLineBreak(item)) head += `${name}: ${item}\r\n`;
    }
  }
  return head;
}
