/**
 * The HTTP/1.1 message format for both sides of the proxy (RFC 9112), as an intermediary must
 * read it: request and response heads parsed with a size bound, body framing decided by the
 * §6.3 rules with every ambiguity refused, and heads serialized so no value can split them.
 * The table of what is refused and what is normalised is in docs/proxy.md ("HTTP/1.1 framing").
 *
 * Owns: syntax and framing decisions, as pure functions. Does not touch sockets (client-h1.ts,
 * server-h1-connection.ts), read field lines (h1-fields.ts) or decode chunks (h1-chunked.ts).
 */

import {
  findHeadEnd,
  H1SyntaxError,
  HeadTooLarge,
  hasControlCharacter,
  parseContentLength,
  parseFieldLines,
  tokenPattern,
} from "./h1-fields.ts";
import type { Headers } from "./handler.ts";

export { H1SyntaxError, HeadTooLarge };

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

/** Whether the `Connection` field lists `token` (case-insensitive). */
function connectionHas(headers: Headers, token: string): boolean {
  const v = headers.connection;
  if (typeof v !== "string" || v === "") return false;
  for (const t of v.split(",")) if (t.trim().toLowerCase() === token) return true;
  return false;
}

const statusLine = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: (.*))?$/;

/**
 * Parses a response head at the start of `buf`. Returns undefined when more bytes are needed;
 * throws H1SyntaxError when the head is malformed or longer than `maxBytes`.
 */
export function parseResponseHead(
  buf: Buffer,
  maxBytes: number,
): { head: ResponseHead; consumed: number } | undefined {
  const end = findHeadEnd(buf, 0, maxBytes);
  if (end === -1) return undefined;
  const lines = buf.toString("latin1", 0, end - 4).split("\r\n");
  const m = statusLine.exec(lines[0]!);
  if (!m || (m[3] !== undefined && hasControlCharacter(m[3])))
    throw new H1SyntaxError("malformed status line");
  const status = Number(m[2]);
  const headers: Headers = {};
  parseFieldLines(lines, 1, headers);
  // An HTTP/1.0 message with Transfer-Encoding has faulty framing: the connection MUST close
  // after it (RFC 9112 §6.1), whatever it says about keep-alive.
  const keepAlive =
    m[1] === "1"
      ? !connectionHas(headers, "close")
      : connectionHas(headers, "keep-alive") && headers["transfer-encoding"] === undefined;
  return { head: { status, headers, keepAlive }, consumed: end };
}

/**
 * How the response body is delimited (RFC 9112 §6.3). Refused (H1SyntaxError, a 502 for the
 * client) where the framing is ambiguous: `Transfer-Encoding` with `Content-Length` (a response
 * splitting vector: §6.3 lets an intermediary drop the length and forward, llhttp refuses, and so
 * do we), a transfer coding other than exactly `chunked`, or an invalid or listed
 * `Content-Length`.
 */
export function responseFraming(method: string, head: ResponseHead): Framing {
  const s = head.status;
  if (method === "HEAD" || s === 204 || s === 304 || s < 200) return { kind: "none" };
  const te = head.headers["transfer-encoding"];
  const cl = head.headers["content-length"];
  if (te !== undefined) {
    if (cl !== undefined) throw new H1SyntaxError("both transfer-encoding and content-length");
    if (typeof te !== "string" || te.toLowerCase() !== "chunked")
      throw new H1SyntaxError("unsupported transfer-encoding");
    return { kind: "chunked" };
  }
  if (cl !== undefined) {
    const n = parseContentLength(cl);
    return n === 0 ? { kind: "none" } : { kind: "length", length: n };
  }
  return { kind: "close" };
}

export interface RequestHead {
  method: string;
  target: string;
  version: "HTTP/1.1" | "HTTP/1.0";
  headers: Headers;
  /** Whether the client allows the connection to stay open after this exchange. */
  keepAlive: boolean;
}

export type RequestFraming = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

/** Request targets: visible ASCII only (no controls, spaces or obs-text). */
const targetPattern = /^[\x21-\x7e]+$/;

/** Bytes of empty lines before a request line at `from` (RFC 9112 §2.2), or -1 if more are needed. */
function skipEmptyLines(buf: Buffer, from: number): number {
  let i = from;
  while (i < buf.length && buf[i] === 13) {
    if (i + 1 === buf.length) return -1;
    if (buf[i + 1] !== 10) throw new H1SyntaxError("bare CR before the request line");
    i += 2;
  }
  return i - from;
}

/**
 * Parses a request head at the start of `buf` (RFC 9112 §3). Empty lines (CRLF) before the
 * request line are skipped, as §2.2 asks of servers; a bare LF there is refused. Returns
 * undefined when more bytes are needed; throws H1SyntaxError when malformed, and HeadTooLarge
 * past `maxBytes` (leading empty lines count).
 */
export function parseRequestHead(
  buf: Buffer,
  maxBytes: number,
): { head: RequestHead; consumed: number } | undefined {
  const skipped = skipEmptyLines(buf, 0);
  if (skipped === -1) return undefined;
  if (skipped > maxBytes) throw new HeadTooLarge("too many empty lines before the request line");
  const end = findHeadEnd(buf, skipped, maxBytes - skipped);
  if (end === -1) return undefined;
  const lines = buf.toString("latin1", skipped, end - 4).split("\r\n");
  const parts = lines[0]!.split(" ");
  if (parts.length !== 3) throw new H1SyntaxError("malformed request line");
  const [method, target, version] = parts as [string, string, string];
  if (!tokenPattern.test(method) || !targetPattern.test(target))
    throw new H1SyntaxError("malformed request line");
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") throw new H1SyntaxError("unsupported HTTP version");
  const headers: Headers = {};
  parseFieldLines(lines, 1, headers);
  const keepAlive =
    version === "HTTP/1.1" ? !connectionHas(headers, "close") : connectionHas(headers, "keep-alive");
  return { head: { method, target, version, headers, keepAlive }, consumed: end };
}

/**
 * Request body framing (RFC 9112 §6.1–6.3); every ambiguity (a request smuggling vector) is
 * refused: `Transfer-Encoding` with `Content-Length`, a coding other than exactly `chunked`,
 * `Transfer-Encoding` in HTTP/1.0 (§6.1: faulty framing), an invalid or listed length.
 */
export function requestFraming(head: Pick<RequestHead, "headers" | "version">): RequestFraming {
  const te = head.headers["transfer-encoding"];
  const cl = head.headers["content-length"];
  if (te !== undefined) {
    if (cl !== undefined) throw new H1SyntaxError("both transfer-encoding and content-length");
    if (head.version !== "HTTP/1.1") throw new H1SyntaxError("transfer-encoding in HTTP/1.0");
    if (typeof te !== "string" || te.toLowerCase() !== "chunked")
      throw new H1SyntaxError("unsupported transfer-encoding");
    return { kind: "chunked" };
  }
  if (cl === undefined) return { kind: "none" };
  const length = parseContentLength(cl);
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}

/**
 * The authority a request is for (RFC 9112 §3.2–3.3): from an absolute-form target (`http://`,
 * which then takes precedence over `Host`), else from the one `Host` field, and the path to
 * forward. Refused (H1SyntaxError, 400): a missing or empty `Host` (a second one was refused by
 * the field parser; with an absolute-form target, missing is refused in HTTP/1.1 only), an
 * authority that is not host[:port], a target in authority-form or with another scheme, and `*`
 * other than for OPTIONS.
 */
export function requestTarget(head: RequestHead): { authority: string; path: string } {
  const target = head.target;
  if (target.charCodeAt(0) === 47 /* "/" */)
    return { authority: checkedAuthority(head.headers.host), path: target };
  if (target === "*" && head.method === "OPTIONS") {
    return { authority: checkedAuthority(head.headers.host), path: target };
  }
  if (target.length > 7 && target.slice(0, 7).toLowerCase() === "http://") {
    // The target's authority wins (§3.2.2), but §3.2 still asks for a valid Host: present in
    // HTTP/1.1, never invalid.
    if (head.version === "HTTP/1.1" || head.headers.host !== undefined) checkedAuthority(head.headers.host);
    // The authority ends at the path or, without one, at the query (RFC 3986 §3.2).
    let end = 7;
    while (end < target.length && target[end] !== "/" && target[end] !== "?") end++;
    const authority = checkedAuthority(target.slice(7, end));
    const rest = target.slice(end);
    return { authority, path: rest === "" ? "/" : rest.charCodeAt(0) === 63 /* "?" */ ? `/${rest}` : rest };
  }
  throw new H1SyntaxError("unsupported request target");
}

const authorityPattern = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%]+)(?::\d{1,5})?$/;

function checkedAuthority(value: string | string[] | undefined): string {
  if (typeof value !== "string" || !authorityPattern.test(value)) {
    throw new H1SyntaxError(value === undefined ? "missing host" : "invalid host");
  }
  return value;
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
