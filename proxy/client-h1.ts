/**
 * HTTP/1.1 client side of the proxy: sends a `ProxyRequest` on a pooled keep-alive connection
 * (plaintext or mTLS) and streams the response back, with trailers. It speaks the wire format
 * directly (h1-codec.ts) rather than through node:http's ClientRequest and Agent, which cost
 * more per request than the rest of the proxy together.
 *
 * Owns: one exchange per connection at a time, request body framing, response body
 * streaming with backpressure, cancellation, and resending a request whose pooled connection
 * turned out closed. Does not choose the target (layers/balance.ts) or own sockets between
 * exchanges (h1-pool.ts).
 */
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import { ChunkedDecoder } from "./h1-chunked.ts";
import {
  type Framing,
  H1SyntaxError,
  parseResponseHead,
  responseFraming,
  serializeRequestHead,
} from "./h1-codec.ts";
import { H1Pools, type Lease } from "./h1-pool.ts";
import { type Headers, ProxyError, type ProxyRequest, type ProxyResponse } from "./handler.ts";
import { forwardableResponseHeaders, forwardableTrailers } from "./headers.ts";
import type { ClientLimits, ClientTls, UpstreamTarget } from "./upstream.ts";

const maxResponseHeadBytes = 64 * 1024;
const lastChunk = Buffer.from("0\r\n\r\n");

/** A pooled connection that failed before any response byte: the request was not processed. */
class StaleConnection extends Error {
  constructor(override readonly cause: ProxyError) {
    super(cause.message);
  }
}

export class H1Client {
  private readonly pools: H1Pools;

  constructor(tls: ClientTls | undefined, limits: ClientLimits) {
    this.pools = new H1Pools(tls, limits);
  }

  async forward(req: ProxyRequest, target: UpstreamTarget): Promise<ProxyResponse> {
    try {
      return await this.forwardOnce(req, target);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      if (req.body.kind === "stream") throw err.cause;
      return this.forwardOnce(req, target);
    }
  }

  close(): void {
    this.pools.close();
  }

  private async forwardOnce(req: ProxyRequest, target: UpstreamTarget): Promise<ProxyResponse> {
    let head: string;
    try {
      head = serializeRequestHead(req.method, req.path, req.authority, req.headers, requestFraming(req));
    } catch (err) {
      throw new ProxyError("BadRequest", (err as Error).message, true);
    }
    if (req.signal.aborted) throw new ProxyError("UpstreamReset", "request cancelled", true);
    const lease = await this.pools.acquire(target);
    return new Promise<ProxyResponse>((resolve, reject) => {
      new Exchange(req, lease, resolve, reject).start(head);
    });
  }
}

function requestFraming(req: ProxyRequest): string {
  const body = req.body;
  if (body.kind === "empty") return "";
  if (body.kind === "buffered") return `content-length: ${body.data.length}\r\n`;
  return body.length !== undefined ? `content-length: ${body.length}\r\n` : "transfer-encoding: chunked\r\n";
}

/** One request/response on one leased connection. */
class Exchange {
  private buffered: Buffer | undefined;
  private framing: Framing | undefined;
  private body: Readable | undefined;
  private remaining = 0;
  private chunked: ChunkedDecoder | undefined;
  private keepAlive = false;
  private requestSent = false;
  private finished = false;
  private released = false;
  private gotBytes = false;
  // Bound once per exchange; named arrow fields would cost a keepNames wrapper each.
  private readonly onData: (chunk: Buffer) => void = this.receive.bind(this);
  private readonly onClose: () => void = this.onSocketClose.bind(this);

  constructor(
    private readonly req: ProxyRequest,
    private readonly lease: Lease,
    private readonly resolve: (res: ProxyResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  start(head: string): void {
    const socket = this.lease.socket;
    socket.on("data", this.onData);
    socket.once("close", this.onClose);
    this.req.signal.onAbort(() => this.fail(new Error("request cancelled")));
    this.sendRequest(socket, head);
  }

  private sendRequest(socket: Socket, head: string): void {
    const body = this.req.body;
    if (body.kind === "empty") {
      socket.write(head, "latin1");
      this.requestSent = true;
    } else if (body.kind === "buffered") {
      // One write, so one TLS record over mTLS.
      socket.write(Buffer.concat([Buffer.from(head, "latin1"), body.data]));
      this.requestSent = true;
    } else {
      socket.write(head, "latin1");
      this.streamBody(socket, body.stream, body.length === undefined);
    }
  }

  private streamBody(socket: Socket, src: Readable, chunked: boolean): void {
    src.on("data", (chunk: Buffer) => {
      const ok = chunked
        ? socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write("\r\n")
        : socket.write(chunk);
      if (!ok) {
        src.pause();
        socket.once("drain", () => src.resume());
      }
    });
    src.once("end", () => {
      if (chunked && !socket.destroyed) socket.write(lastChunk);
      this.requestSent = true;
      this.maybeRelease();
    });
    src.once("error", () => this.fail(new Error("request body failed")));
  }

  private receive(chunk: Buffer): void {
    this.gotBytes = true;
    if (this.framing === undefined) {
      const buf: Buffer = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
      let offset = 0;
      let parsed: ReturnType<typeof parseResponseHead>;
      try {
        for (;;) {
          parsed = parseResponseHead(offset === 0 ? buf : buf.subarray(offset), maxResponseHeadBytes);
          // Interim responses (100 Continue, 103 Early Hints) are consumed here, not forwarded.
          if (!parsed || parsed.head.status >= 200 || parsed.head.status === 101) break;
          offset += parsed.consumed;
        }
        // The proxy never forwards an upgrade, so a 101 answers nothing that was asked: what
        // follows it is not HTTP, and forwarding it as a final answer would hand it to the client.
        if (parsed?.head.status === 101) throw new H1SyntaxError("unsolicited 101 Switching Protocols");
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (!parsed) {
        this.buffered = offset === 0 ? buf : buf.subarray(offset);
        return;
      }
      this.buffered = undefined;
      this.onHead(parsed.head, buf.subarray(offset + parsed.consumed));
      return;
    }
    this.onBody(chunk);
  }

  private onHead(head: { status: number; headers: Headers; keepAlive: boolean }, rest: Buffer): void {
    let framing: Framing;
    // Chunks that came with the head are decoded before anything is answered, so a body broken
    // from its first bytes is a 502 rather than a forwarded head with a cut body.
    let early: Buffer[] | undefined;
    let earlyUsed = 0;
    try {
      framing = responseFraming(this.req.method, head);
      if (framing.kind === "chunked") {
        this.chunked = new ChunkedDecoder();
        if (rest.length > 0) {
          const parts: Buffer[] = [];
          earlyUsed = this.chunked.feed(rest, (d) => parts.push(d));
          early = parts;
        }
      }
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.framing = framing;
    this.keepAlive = head.keepAlive && framing.kind !== "close";
    const response: ProxyResponse = {
      status: head.status,
      headers: forwardableResponseHeaders(head.headers),
      body: null,
      trailers: () => (this.chunked?.trailers ? forwardableTrailers(this.chunked.trailers) : undefined),
    };
    const whole = this.wholeBody(framing, rest, early, earlyUsed);
    if (whole !== undefined) {
      // The whole body came with the head: hand it over as a Buffer (or none), no stream needed.
      response.body = whole.length === 0 && framing.kind === "none" ? null : whole;
      this.finished = true;
      this.resolve(response);
      this.maybeRelease();
      return;
    }
    if (framing.kind === "length") this.remaining = framing.length;
    const socket = this.lease.socket;
    this.body = new Readable({
      read: () => socket.resume(),
      destroy: (err, cb) => {
        if (!this.finished) this.abandon();
        cb(err);
      },
    });
    response.body = this.body;
    this.resolve(response);
    if (early) {
      if (this.chunked!.done && earlyUsed < rest.length) this.keepAlive = false;
      for (const part of early) this.push(part);
      if (this.chunked!.done) this.complete();
    } else if (rest.length > 0) this.onBody(rest);
  }

  /**
   * The body when it is complete in what came with the head (empty for a bodiless response);
   * undefined when it must be streamed. Bytes past its end answer nothing: no reuse.
   */
  private wholeBody(
    framing: Framing,
    rest: Buffer,
    early: Buffer[] | undefined,
    used: number,
  ): Buffer | undefined {
    if (framing.kind === "none") {
      if (rest.length > 0) this.keepAlive = false;
      return rest.subarray(0, 0);
    }
    if (framing.kind === "length" && rest.length >= framing.length) {
      if (rest.length > framing.length) this.keepAlive = false;
      return rest.length === framing.length ? rest : rest.subarray(0, framing.length);
    }
    // Trailers need the streamed path: a Buffer body is sent without them.
    if (framing.kind === "chunked" && early && this.chunked!.done && !this.chunked!.trailers) {
      if (used < rest.length) this.keepAlive = false;
      return early.length === 1 ? early[0]! : Buffer.concat(early);
    }
    return undefined;
  }

  private onBody(chunk: Buffer): void {
    const body = this.body;
    const framing = this.framing;
    if (!body || !framing || this.finished) return;
    if (framing.kind === "length") {
      const n = Math.min(this.remaining, chunk.length);
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
      this.remaining -= n;
      if (this.remaining === 0) this.complete();
    } else if (framing.kind === "chunked") {
      try {
        this.chunked!.feed(chunk, (data) => this.push(data));
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      if (this.chunked!.done) this.complete();
    } else {
      this.push(chunk);
    }
  }

  private push(data: Buffer): void {
    if (!this.body!.push(data)) this.lease.socket.pause();
  }

  private complete(): void {
    this.finished = true;
    this.body?.push(null);
    this.maybeRelease();
  }

  /** Returns the connection once both directions are done. */
  private maybeRelease(): void {
    if (this.finished && this.requestSent) this.release(this.keepAlive);
  }

  /** Hands the connection back exactly once; after this the socket may serve another exchange. */
  private release(reusable: boolean): void {
    if (this.released) return;
    this.released = true;
    const socket = this.lease.socket;
    socket.off("data", this.onData);
    socket.off("close", this.onClose);
    this.lease.release(reusable);
  }

  private onSocketClose(): void {
    if (this.framing?.kind === "close" && !this.finished) {
      this.finished = true;
      this.body?.push(null);
      this.release(false);
      return;
    }
    this.fail(new Error("upstream closed the connection"));
  }

  /** The response body's reader went away: the connection cannot be reused. */
  private abandon(): void {
    this.finished = true;
    this.release(false);
  }

  private fail(err: Error): void {
    if (this.released) return;
    this.release(false);
    if (this.framing === undefined) {
      const stale = this.lease.reused && !this.gotBytes && !(err instanceof H1SyntaxError);
      const e = new ProxyError("UpstreamReset", err.message);
      this.reject(stale ? new StaleConnection(e) : e);
    } else if (!this.finished) {
      this.finished = true;
      this.body?.destroy(err);
    }
  }
}
