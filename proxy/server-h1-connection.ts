/**
 * One HTTP/1.1 connection on the server side: request heads parsed with bounds, request
 * bodies streamed into the stack with backpressure, responses framed (content-length as
 * given, else chunked with trailers) and written with their head in one write when possible.
 *
 * Owns: the per-connection state machine. Does not own listener-wide state (server-h1.ts).
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { discardBody } from "./body.ts";
import { Cancellation } from "./cancellation.ts";
import {
  ChunkedDecoder,
  H1SyntaxError,
  HeadTooLarge,
  parseRequestHead,
  type RequestFraming,
  type RequestHead,
  requestFraming,
  serializeLastChunk,
  serializeResponseHead,
} from "./h1-codec.ts";
import type { ConnectionContext, ProxyRequest, ProxyResponse, RequestBody } from "./handler.ts";
import { forwardableHeaders } from "./headers.ts";
import { type H1ServerShared, reasonPhrase } from "./server-h1.ts";

const continueLine = "HTTP/1.1 100 Continue\r\n\r\n";
const crlf = "\r\n";

export class H1Connection {
  private pending: Buffer | undefined;
  private inFlight = false;
  private closed = false;
  private closeAfter = false;
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
  }

  start(prefix: Buffer | undefined): void {
    const s = this.socket;
    s.on("data", (chunk: Buffer) => this.onData(chunk));
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
      if (!parsed) return;
      const rest = this.pending.subarray(parsed.consumed);
      this.pending = undefined;
      if (!this.begin(parsed.head)) return;
      if (rest.length > 0) {
        const after = this.bodyDone ? rest : this.feedBody(rest);
        if (after !== undefined && after.length > 0) this.pending = after;
      }
    }
  }

  /** Starts one exchange; false when the request was refused. */
  private begin(head: RequestHead): boolean {
    let framing: RequestFraming;
    try {
      framing = requestFraming(head.headers);
    } catch {
      this.refuse(400, "malformed");
      return false;
    }
    if (head.headers.upgrade !== undefined || head.method === "CONNECT") {
      this.refuse(400, "malformed");
      return false;
    }
    // Absolute-form targets come from applications that use the outbound port as an HTTP proxy.
    let authority = typeof head.headers.host === "string" ? head.headers.host : "";
    let path = head.target;
    if (path.startsWith("http://")) {
      const slash = path.indexOf("/", 7);
      authority = path.slice(7, slash === -1 ? undefined : slash);
      path = slash === -1 ? "/" : path.slice(slash);
    }
    this.awaitingHead = false;
    this.inFlight = true;
    if (!head.keepAlive) this.closeAfter = true;
    const body = this.openBody(framing);
    if (framing.kind !== "none" && String(head.headers.expect ?? "").toLowerCase() === "100-continue") {
      this.socket.write(continueLine);
    }
    const cancel = new Cancellation();
    this.cancel = cancel;
    const req: ProxyRequest = {
      method: head.method,
      scheme: "http",
      authority,
      path,
      headers: forwardableHeaders(head.headers),
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
        this.shared.metrics.protocolErrors.inc([this.shared.direction, "malformed"]);
        this.body?.destroy(new H1SyntaxError("malformed chunked body"));
        this.close();
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
    const status = res.status;
    const bodiless = head.method === "HEAD" || status === 204 || status === 304 || status < 200;
    const hasLength = res.headers["content-length"] !== undefined;
    let extra = this.closeAfter || this.shared.draining ? "connection: close\r\n" : this.shared.keepAliveHint;
    let chunked = false;
    if (!bodiless && res.body === null && !hasLength) extra += "content-length: 0\r\n";
    else if (!bodiless && Buffer.isBuffer(res.body) && !hasLength)
      extra += `content-length: ${res.body.length}\r\n`;
    else if (!bodiless && res.body !== null && !hasLength) {
      extra += "transfer-encoding: chunked\r\n";
      chunked = true;
    }
    const text = serializeResponseHead(status, reasonPhrase(status), res.headers, extra);
    const body = res.body;
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
    this.streamResponse(body, chunked, () => res.trailers());
    process.nextTick(() => socket.uncork());
  }

  private streamResponse(body: Readable, chunked: boolean, trailers: ProxyResponse["trailers"]): void {
    const socket = this.socket;
    body.on("data", (chunk: Buffer) => {
      const ok = chunked
        ? socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write(crlf)
        : socket.write(chunk);
      if (!ok) {
        body.pause();
        socket.once("drain", () => body.resume());
      }
    });
    body.once("end", () => {
      if (chunked) socket.write(serializeLastChunk(trailers()), "latin1");
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
      this.socket.end();
      this.closed = true;
      return;
    }
    this.awaitingHead = true;
    this.arm(this.pending === undefined);
    this.socket.resume();
    if (this.pending !== undefined) this.parseNext();
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
