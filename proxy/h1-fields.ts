/**
 * HTTP/1.1 syntax shared by request heads, response heads and chunked trailers (RFC 9112 §2,
 * §5; RFC 9110 §5): where a head ends, and how field lines are read. Strict on purpose, as an
 * intermediary must be: every line ends in CRLF (a bare LF or CR is refused, not read as a line
 * end), field names are tokens with nothing between the name and the colon, obs-fold is refused,
 * values hold no control characters, and a second `Host` or `Content-Length` line is refused.
 *
 * Owns: the syntax errors and the field-line rules. Does not decide message framing
 * (h1-codec.ts) or decode chunked bodies (h1-chunked.ts).
 */
import type { Headers } from "./handler.ts";

/** Input that breaks HTTP/1.1 syntax: the message is refused (400 downstream, 502 upstream). */
export class H1SyntaxError extends Error {}
/** A head longer than the configured bound (431 downstream). */
export class HeadTooLarge extends H1SyntaxError {}

export const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const cr = 13;
const lf = 10;

/**
 * Finds the end of a head that starts at `from`: returns the index just past its CRLFCRLF, or
 * -1 when more bytes are needed. Throws on a bare LF anywhere in the head (RFC 9112 §2.2 lets a
 * recipient accept one; an intermediary that does can be desynchronised from one that does not),
 * and HeadTooLarge past `maxBytes`. Scans LF by LF: a head has few lines, so this costs a few
 * native `indexOf` calls.
 */
export function findHeadEnd(buf: Buffer, from: number, maxBytes: number): number {
  let at = buf.indexOf(lf, from);
  while (at !== -1) {
    if (at - from > maxBytes + 3) throw new HeadTooLarge(`head longer than ${maxBytes} bytes`);
    if (at === from || buf[at - 1] !== cr) throw new H1SyntaxError("bare LF in head");
    // buf[at - 2] is an LF already checked to follow a CR: this is CRLF CRLF.
    if (at - from >= 3 && buf[at - 2] === lf) return at + 1;
    at = buf.indexOf(lf, at + 1);
  }
  if (buf.length - from > maxBytes) throw new HeadTooLarge(`head longer than ${maxBytes} bytes`);
  return -1;
}

/** Field values may hold visible characters, obs-text, spaces and tabs only (RFC 9110 §5.5). */
export function hasControlCharacter(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

export function addHeader(headers: Headers, name: string, value: string): void {
  const prev = headers[name];
  if (prev === undefined) headers[name] = value;
  else if (typeof prev === "string")
    headers[name] = name === "set-cookie" ? [prev, value] : `${prev}, ${value}`;
  else prev.push(value);
}

const seenHost = 1;
const seenContentLength = 2;

/**
 * Reads field lines `lines[from..]` (each without its CRLF) into `headers` with lower-case names.
 * Throws H1SyntaxError on a malformed line, obs-fold, a control character in a value, a tab
 * after a `Content-Length` or `Transfer-Encoding` value, or a repeated `Host` or
 * `Content-Length` (RFC 9112 §3.2, §6.3: refused rather than picked from).
 */
export function parseFieldLines(lines: readonly string[], from: number, headers: Headers): void {
  let seen = 0;
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new H1SyntaxError("malformed field line");
    const name = line.slice(0, colon);
    if (!tokenPattern.test(name)) throw new H1SyntaxError("malformed field name");
    let start = colon + 1;
    let end = line.length;
    while (start < end && isOws(line.charCodeAt(start))) start++;
    while (end > start && isOws(line.charCodeAt(end - 1))) end--;
    const value = line.slice(start, end);
    if (hasControlCharacter(value)) throw new H1SyntaxError(`control character in field ${name}`);
    const lower = name.toLowerCase();
    // RFC 9110 lets a tab end a value as OWS; llhttp refuses one after these two, and a framing
    // field two parsers read differently is how requests are smuggled: refused.
    if (end < line.length && (lower === "content-length" || lower === "transfer-encoding")) {
      if (line.indexOf("\t", end) !== -1) throw new H1SyntaxError(`a tab after the value of ${lower}`);
    }
    const bit = lower === "host" ? seenHost : lower === "content-length" ? seenContentLength : 0;
    if (bit !== 0) {
      if ((seen & bit) !== 0) throw new H1SyntaxError(`more than one ${lower} field`);
      seen |= bit;
    }
    addHeader(headers, lower, value);
  }
}

/** A `Content-Length` value: 1–15 digits, nothing else (no list, sign or spaces). */
export function parseContentLength(value: string | string[]): number {
  if (typeof value !== "string" || !/^\d{1,15}$/.test(value)) {
    throw new H1SyntaxError("invalid content-length");
  }
  return Number(value);
}
