/**
 * One HTTP/1.1 connection on the server side: request heads parsed with bounds, request
 * bodies streamed into the stack with backpressure, responses framed (content-length as
 * given and enforced, else chunked with trailers) and written with their head in one write
 * when possible. A client that half-closes after its requests gets its answers, then the close.
 *
 * Owns: the per-connection state machine. Does not own listener-wide state (server-h1.ts) or
 * the message syntax (h1-codec.ts).
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { discardBody } from "./body.ts";
import { Cancellation } from "./cancellation.ts";
import { ChunkedDecoder } from "./h1-chunked.ts";
import {
  H1SyntaxError,
  HeadTooLarge,
  parseRequestHead,
  type RequestFraming,
  type RequestHead,
  requestFraming,
  requestTarget,
  serializeLastChunk,
  serializeResponseHead,
} from "./h1-codec.ts";
import type { ConnectionContext, ProxyRequest, ProxyResponse, RequestBody } from "./handler.ts";
import { forwardableRequestHeaders } from "./headers.ts";
import { type H1ServerShared, reasonPhrase } from "./server-h1-shared.ts";

/** The length of a body delimited by the end of the connection (for HTTP/1.0 clients). */
const untilCloseLength = Number.POSITIVE_INFINITY;
const continueLine = "HTTP/1.1 100 Continue\r\n\r\n";
const crlf = "\r\n";

export class H1Connection {
  private pending: Buffer | undefined;
  private inFlight = false;
  /** The current response's head has been written: the connection can no longer refuse it. */
  private responding = false;
  private closed = false;
  private closeAfter = false;
  /** The client half-closed: answer what was received, then close. */
  private ended = false;
  private awaitingHead = true;
  /** The head deadline (headerTimeoutMs from its first byte) or, between requests, the keep-alive idle wait. */
  private timer: NodeJS.Timeout;
  private idleWait = false;
  private body: Readable | undefined;
  private bodyDone = true;
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private cancel: Cancellation | undefined;

  constructor(
    private readonly shared: H1ServerShared,
    private readonly socket: Socket,
    private readonly conn: ConnectionContext,
  ) {
    // Detection has read the first bytes of the first head: its deadline runs from now.
    this.timer = setTimeout(() => this.onTimer(), shared.limits.headerTimeoutMs);
    // A client may half-close after its last request and still read the answers (RFC 9112
    // §9.6); node would otherwise end our side as soon as theirs ends.
    socket.allowHalfOpen = true;
  }

  start(prefix: Buffer | undefined): void {
    const s = this.socket;
    s.on("data", (chunk: Buffer) => this.onData(chunk));
    s.once("end", () => this.onEnd());
    s.once("close", () => this.onClose());
    if (prefix && prefix.length > 0) this.onData(prefix);
    s.resume();
  }

  drain(): void {
    this.closeAfter = true;
    if (!this.inFlight) this.close();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let rest: Buffer | undefined = chunk;
    if (!this.bodyDone) rest = this.feedBody(chunk);
    if (rest === undefined || rest.length === 0) return;
    if (this.idleWait) this.arm(false);
    this.pending = this.pending === undefined ? rest : Buffer.concat([this.pending, rest]);
    if (this.inFlight) {
      // Pipelined bytes wait for the current response; stop reading past one head's worth.
      if (this.pending.length > this.shared.limits.maxHeaderBytes) this.socket.pause();
      return;
    }
    this.parseNext();
  }

  private parseNext(): void {
    while (!this.inFlight && !this.closed && this.pending !== undefined) {
      let parsed: ReturnType<typeof parseRequestHead>;
      try {
        parsed = parseRequestHead(this.pending, this.shared.limits.maxHeaderBytes);
      } catch (err) {
        this.refuse(
          err instanceof HeadTooLarge ? 431 : 400,
          err instanceof HeadTooLarge ? "header_too_large" : "malformed",
        );
        return;
      }
      if (!parsed) break;
      const rest = this.pending.subarray(parsed.consumed);
      this.pending = undefined;
      if (!this.begin(parsed.head)) return;
      if (rest.length > 0) {
        const after = this.bodyDone ? rest : this.feedBody(rest);
        if (after !== undefined && after.length > 0) this.pending = after;
      }
      // A pipelined request begun after the client's FIN: what its body lacks will never come.
      if (this.ended && !this.bodyDone && !this.closed) {
        this.cutShort();
        return;
      }
    }
    // Half-closed and nothing more to answer: an incomplete head can never complete.
    if (this.ended && !this.inFlight && !this.closed) this.endConnection();
  }

  /** Starts one exchange; false when the request was refused. */
  private begin(head: RequestHead): boolean {
    let framing: RequestFraming;
    let target: { authority: string; path: string };
    try {
      framing = requestFraming(head);
      target = requestTarget(head);
    } catch {
      this.refuse(400, "malformed");
      return false;
    }
    if (head.headers.upgrade !== undefined || head.method === "CONNECT") {
      this.refuse(400, "malformed");
      return false;
    }
    this.awaitingHead = false;
    this.inFlight = true;
    this.responding = false;
    if (!head.keepAlive || this.shared.closeEach) this.closeAfter = true;
    const body = this.openBody(framing);
    if (expectsContinue(head, framing)) this.socket.write(continueLine);
    const cancel = new Cancellation();
    this.cancel = cancel;
    const req: ProxyRequest = {
      method: head.method,
      scheme: "http",
      authority: target.authority,
      path: target.path,
      headers: forwardableRequestHeaders(head.headers),
      body,
      version: "http/1.1",
      conn: this.conn,
      signal: cancel,
      startedAt: performance.now(),
    };
    this.shared.handler(req).then(
      (res) => this.respond(head, res),
      () => this.respond(head, { status: 502, headers: {}, body: null, trailers: () => undefined }),
    );
    return true;
  }

  private openBody(framing: RequestFraming): RequestBody {
    this.chunked = undefined;
    if (framing.kind === "none") {
      this.bodyDone = true;
      this.body = undefined;
      return { kind: "empty" };
    }
    this.bodyDone = false;
    const socket = this.socket;
    this.body = new Readable({ read: () => socket.resume() });
    if (framing.kind === "length") this.remaining = framing.length;
    else this.chunked = new ChunkedDecoder();
    return {
      kind: "stream",
      stream: this.body,
      length: framing.kind === "length" ? framing.length : undefined,
    };
  }

  /** Feeds request body bytes; returns what follows the body (the next request), if any. */
  private feedBody(chunk: Buffer): Buffer | undefined {
    if (this.chunked) {
      let used: number;
      try {
        used = this.chunked.feed(chunk, (d) => this.pushBody(d));
      } catch {
        this.refuseBody();
        return undefined;
      }
      if (this.chunked.done) this.endBody();
      return chunk.subarray(used);
    }
    const n = Math.min(this.remaining, chunk.length);
    this.pushBody(n === chunk.length ? chunk : chunk.subarray(0, n));
    this.remaining -= n;
    if (this.remaining === 0) this.endBody();
    return chunk.subarray(n);
  }

  /**
   * A malformed chunked body: the upstream exchange is abandoned (its request can never be
   * completed) and the client gets 400 unless a response is already under way, then the close.
   */
  private refuseBody(): void {
    this.body?.destroy(new H1SyntaxError("malformed chunked body"));
    this.cancel?.abort();
    if (this.responding) {
      this.shared.metrics.protocolErrors.inc([this.shared.direction, "malformed"]);
      this.close();
    } else {
      this.refuse(400, "malformed");
    }
  }

  private pushBody(data: Buffer): void {
    if (data.length > 0 && this.body && !this.body.push(data)) this.socket.pause();
  }

  private endBody(): void {
    this.bodyDone = true;
    this.body?.push(null);
  }

  private respond(head: RequestHead, res: ProxyResponse): void {
    const socket = this.socket;
    if (this.closed || socket.destroyed) {
      discardBody(res.body);
      return;
    }
    this.responding = true;
    const status = res.status;
    const bodiless = head.method === "HEAD" || status === 204 || status === 304 || status < 200;
    const length = declaredLength(res, status);
    const body = res.body;
    const unframed = !bodiless && body !== null && !Buffer.isBuffer(body) && length === undefined;
    // HTTP/1.0 has no chunked coding (RFC 9112 §6.1: MUST NOT send Transfer-Encoding to it): a
    // body of unknown length ends with the connection.
    const untilClose = unframed && head.version === "HTTP/1.0";
    if (untilClose) this.closeAfter = true;
    let extra = this.closeAfter || this.shared.draining ? "connection: close\r\n" : this.shared.keepAliveHint;
    let chunked = false;
    if (!bodiless && body === null && length === undefined) extra += "content-length: 0\r\n";
    else if (!bodiless && Buffer.isBuffer(body) && length !== body.length) {
      // A whole body in hand frames itself, whatever length was declared.
      res.headers["content-length"] = undefined;
      extra += `content-length: ${body.length}\r\n`;
    } else if (unframed && !untilClose) {
      extra += "transfer-encoding: chunked\r\n";
      chunked = true;
    }
    const text = serializeResponseHead(status, reasonPhrase(status), res.headers, extra);
    if (bodiless || body === null || Buffer.isBuffer(body)) {
      // Head and a whole body leave in one write — and, over TLS, in one record.
      const headBytes = Buffer.from(text, "latin1");
      socket.write(Buffer.isBuffer(body) && !bodiless ? Buffer.concat([headBytes, body]) : headBytes);
      discardBody(body);
      this.finish();
      return;
    }
    socket.cork();
    socket.write(text, "latin1");
    this.streamResponse(body, chunked ? -1 : untilClose ? untilCloseLength : length!, () => res.trailers());
    process.nextTick(() => socket.uncork());
  }

  /**
   * Writes a streamed body: chunked (`length` -1), until its end and then the connection's
   * (`untilCloseLength`), or exactly `length` bytes. A body that runs
   * past or short of its declared length cannot be framed: the connection is closed rather than
   * let the extra bytes be read as the next response.
   */
  private streamResponse(body: Readable, length: number, trailers: ProxyResponse["trailers"]): void {
    const socket = this.socket;
    let left = length;
    body.on("data", (chunk: Buffer) => {
      let ok: boolean;
      if (left === -1) {
        ok = socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write(crlf);
      } else if (chunk.length <= left) {
        left -= chunk.length;
        ok = socket.write(chunk);
      } else {
        socket.end(chunk.subarray(0, left));
        body.destroy();
        this.close();
        return;
      }
      if (!ok) {
        body.pause();
        socket.once("drain", () => body.resume());
      }
    });
    body.once("end", () => {
      if (left > 0 && left !== untilCloseLength) {
        this.close();
        return;
      }
      if (left === -1) socket.write(serializeLastChunk(trailers()), "latin1");
      this.finish();
    });
    body.once("error", () => this.close());
  }

  /** The response is written: next request, or close. */
  private finish(): void {
    this.inFlight = false;
    this.cancel = undefined;
    if (!this.bodyDone || this.closeAfter || this.shared.draining) {
      // An unread request body leaves no way to find the next request: close instead.
      this.endConnection();
      return;
    }
    this.awaitingHead = true;
    this.arm(this.pending === undefined);
    if (!this.ended) this.socket.resume();
    this.parseNext();
  }

  private refuse(status: number, reason: string): void {
    this.shared.metrics.protocolErrors.inc([this.shared.direction, reason]);
    this.closed = true;
    this.socket.end(
      `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  }

  /**
   * Between requests the connection may sit idle for idleTimeoutMs (announced to clients as
   * `keep-alive: timeout=N`), longer than the pools of most clients keep an idle connection, so
   * they close first: a server closing an idle connection races the client's next request on
   * it, which the client sees as a reset. The next head's first byte starts its own deadline.
   */
  private arm(idle: boolean): void {
    this.idleWait = idle;
    clearTimeout(this.timer);
    const { idleTimeoutMs, headerTimeoutMs } = this.shared.limits;
    this.timer = setTimeout(() => this.onTimer(), idle ? idleTimeoutMs : headerTimeoutMs);
  }

  private onTimer(): void {
    if (!this.awaitingHead || this.inFlight || this.closed) return;
    if (!this.idleWait) this.shared.metrics.protocolErrors.inc([this.shared.direction, "header_timeout"]);
    this.close();
  }

  /** The client sent FIN. A body cut short can never complete; complete requests are answered. */
  private onEnd(): void {
    this.ended = true;
    if (this.closed) return;
    if (!this.bodyDone) this.cutShort();
    else if (!this.inFlight) this.parseNext();
  }

  /** The request body in flight can no longer complete: the exchange is abandoned. */
  private cutShort(): void {
    this.body?.destroy(new H1SyntaxError("request body cut short"));
    this.cancel?.abort();
    this.close();
  }

  /** Ends our side after what was written; the socket closes once both sides are done. */
  private endConnection(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket.end();
  }

  private close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.cancel?.abort();
    if (!this.bodyDone) this.body?.destroy();
  }
}

/**
 * Whether to answer `Expect: 100-continue` with a 100 before the body: an HTTP/1.0 client knows
 * no interim responses and would read the 100 as its answer (RFC 9110 §10.1.1: a server MUST
 * ignore the expectation in an HTTP/1.0 request).
 */
function expectsContinue(head: RequestHead, framing: RequestFraming): boolean {
  return (
    framing.kind !== "none" &&
    head.version === "HTTP/1.1" &&
    String(head.headers.expect ?? "").toLowerCase() === "100-continue"
  );
}

/**
 * The response's `Content-Length` as a number, or undefined when it has none or it cannot be
 * trusted (then the header is dropped and the body framed by the server). 1xx and 204 responses
 * may not carry one (RFC 9110 §8.6).
 */
function declaredLength(res: ProxyResponse, status: number): number | undefined {
  const v = res.headers["content-length"];
  if (v === undefined) return undefined;
  if (status < 200 || status === 204 || typeof v !== "string" || !/^\d{1,15}$/.test(v)) {
    res.headers["content-length"] = undefined;
    return undefined;
  }
  return Number(v);
}
