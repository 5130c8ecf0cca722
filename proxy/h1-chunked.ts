/**
 * Streaming decoder for the chunked transfer coding (RFC 9112 §7.1), used for request bodies
 * (server side) and response bodies (client side). Strict, as llhttp is: every line ends in
 * CRLF (a bare LF or CR is refused, in the size line, the chunk extension, after the data and in
 * trailers), the size is hex digits only, extensions are `;name[=token|"quoted"]` with no
 * whitespace, and trailers follow the field-line rules of h1-fields.ts and may not carry
 * `Transfer-Encoding` or `Content-Length`. Extensions are
 * validated and dropped; the proxy re-frames what it forwards.
 *
 * Owns: the decoder state machine and its bounds. Does not touch sockets.
 */

import { H1SyntaxError, parseFieldLines } from "./h1-fields.ts";
import type { Headers } from "./handler.ts";

const token = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const quoted = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"';
const sizeLine = new RegExp(`^([0-9A-Fa-f]{1,12})(?:;${token}(?:=(?:${token}|${quoted}))?)*$`);
const maxTrailerLines = 100;

// Decoder states.
const inSize = 0;
const inData = 1;
const wantCr = 2;
const wantLf = 3;
const inTrailers = 4;
const finished = 5;

/** Decodes a chunked body; size lines and trailer lines may not exceed `maxLine` bytes. */
export class ChunkedDecoder {
  private state = inSize;
  private remaining = 0;
  private line = "";
  private trailerLines: string[] | undefined;
  trailers: Headers | undefined;

  constructor(private readonly maxLine = 16 * 1024) {}

  get done(): boolean {
    return this.state === finished;
  }

  /**
   * Decodes `buf`, calling `onData` for body bytes. Returns the bytes consumed: what follows the
   * last chunk belongs to the next message. Throws H1SyntaxError on malformed framing.
   */
  feed(buf: Buffer, onData: (chunk: Buffer) => void): number {
    let i = 0;
    while (i < buf.length) {
      switch (this.state) {
        case inData: {
          const n = Math.min(this.remaining, buf.length - i);
          onData(buf.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = wantCr;
          break;
        }
        case wantCr:
          if (buf[i++] !== 13) throw new H1SyntaxError("missing CRLF after chunk data");
          this.state = wantLf;
          break;
        case wantLf:
          if (buf[i++] !== 10) throw new H1SyntaxError("missing CRLF after chunk data");
          this.state = inSize;
          break;
        case finished:
          return i;
        default:
          i = this.readLine(buf, i);
      }
    }
    return i;
  }

  /** Accumulates a size or trailer line; on its LF, checks the CRLF and handles the line. */
  private readLine(buf: Buffer, i: number): number {
    const nl = buf.indexOf(10, i);
    const end = nl === -1 ? buf.length : nl;
    this.line += buf.toString("latin1", i, end);
    if (this.line.length > this.maxLine) throw new H1SyntaxError("chunk line too long");
    if (nl === -1) return buf.length;
    const text = this.line;
    this.line = "";
    if (text.charCodeAt(text.length - 1) !== 13 || text.indexOf("\r") !== text.length - 1) {
      throw new H1SyntaxError("chunk line not ended by CRLF");
    }
    this.onLine(text.slice(0, -1));
    return nl + 1;
  }

  private onLine(line: string): void {
    if (this.state === inSize) {
      const m = sizeLine.exec(line);
      if (!m) throw new H1SyntaxError("bad chunk size line");
      this.remaining = Number.parseInt(m[1]!, 16);
      this.state = this.remaining === 0 ? inTrailers : inData;
      return;
    }
    // Trailers: field lines up to an empty line.
    if (line !== "") {
      this.trailerLines ??= [];
      this.trailerLines.push(line);
      if (this.trailerLines.length > maxTrailerLines) throw new H1SyntaxError("too many trailers");
      return;
    }
    if (this.trailerLines) {
      this.trailers = {};
      parseFieldLines(this.trailerLines, 0, this.trailers);
      // Framing cannot change after the body (RFC 9110 §6.5.1); llhttp refuses these too.
      const t = this.trailers;
      if (t["transfer-encoding"] !== undefined || t["content-length"] !== undefined) {
        throw new H1SyntaxError("a framing field in trailers");
      }
    }
    this.state = finished;
  }
}
