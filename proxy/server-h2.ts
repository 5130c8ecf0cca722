/**
 * HTTP/2 server side of a listener (h2c after detection, or h2 inside mTLS): streams become
 * `ProxyRequest`s; responses are written back with their trailers, which is what gRPC needs.
 *
 * Owns: the node:http2 server (never listening itself), its protocol limits and graceful
 * GOAWAY on drain. Does not route or forward.
 */
import http2 from "node:http2";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { discardBody, pipeBody } from "./body.ts";
import { Cancellation } from "./cancellation.ts";
import type { ConnectionContext, Handler, ProxyRequest, ProxyResponse, RequestBody } from "./handler.ts";
import { forwardableRequestHeaders } from "./headers.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { ServerLimits } from "./server-h1-shared.ts";

export interface H2ServerLimits extends ServerLimits {
  maxConcurrentStreams: number;
}

const endStreamFlag = 0x1;
const INTERNAL_ERROR = http2.constants.NGHTTP2_INTERNAL_ERROR;

export class H2Server {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Map<http2.ServerHttp2Session, ConnectionContext>();
  private pendingConn: ConnectionContext | undefined;

  constructor(
    private readonly handler: Handler,
    private readonly limits: H2ServerLimits,
    private readonly metrics: ProxyMetrics,
    private readonly direction: string,
  ) {
    this.server = http2.createServer({
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderBytes,
        enablePush: false,
      },
      maxSessionMemory: 16,
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      maxHeaderListPairs: 256,
    });
    this.server.on("session", (session) => this.onSession(session));
    this.server.on("stream", (stream, headers, flags, rawHeaders) =>
      this.onStream(stream, headers, flags, rawHeaders),
    );
    // Counted once, from the session's own "error" event (the server re-emits the same error as
    // "sessionError").
    this.server.on("sessionError", () => {});
  }

  /** Takes over a socket known to speak HTTP/2 (h2c preface or ALPN h2). */
  accept(socket: Socket, conn: ConnectionContext, prefix: Buffer | undefined): void {
    this.pendingConn = conn;
    try {
      this.server.emit("connection", socket);
    } finally {
      this.pendingConn = undefined;
    }
    if (prefix) socket.unshift(prefix);
  }

  /** Sends GOAWAY everywhere: streams in flight finish, new ones go elsewhere. */
  drain(): void {
    for (const session of this.sessions.keys()) session.close();
  }

  private onSession(session: http2.ServerHttp2Session): void {
    const conn = this.pendingConn;
    if (!conn) {
      session.destroy();
      return;
    }
    this.sessions.set(session, conn);
    session.on("error", (err: NodeJS.ErrnoException) => {
      if (isProtocolError(err)) this.metrics.protocolErrors.inc([this.direction, "h2_session"]);
    });
    session.once("close", () => this.sessions.delete(session));
    session.setTimeout(this.limits.idleTimeoutMs, () => session.close());
  }

  private onStream(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    flags: number,
    rawHeaders: string[],
  ): void {
    stream.on("error", () => {});
    // SETTINGS_MAX_HEADER_LIST_SIZE binds nghttp2 only once the client acknowledged it, and
    // clients send their first requests before that: the limit is checked here for every stream.
    if (headerListSize(rawHeaders) > this.limits.maxHeaderBytes) {
      this.metrics.protocolErrors.inc([this.direction, "header_too_large"]);
      respondEmpty(stream, 431);
      return;
    }
    const conn = this.sessions.get(stream.session as http2.ServerHttp2Session);
    const method = headers[":method"];
    const path = headers[":path"];
    if (!conn || method === undefined || path === undefined || method === "CONNECT") {
      this.metrics.protocolErrors.inc([this.direction, "malformed"]);
      respondEmpty(stream, 400);
      return;
    }
    const ac = new Cancellation();
    stream.once("aborted", () => ac.abort());
    stream.once("close", () => {
      if (stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) ac.abort();
    });
    const preq: ProxyRequest = {
      method,
      scheme: headers[":scheme"] ?? "http",
      authority: headers[":authority"] ?? headers.host ?? "",
      path,
      headers: forwardableRequestHeaders(headers),
      body: requestBody(stream, headers, flags),
      version: "h2",
      conn,
      signal: ac,
      startedAt: performance.now(),
    };
    this.handler(preq).then(
      (resp) => writeResponse(stream, resp),
      () => respondEmpty(stream, 502),
    );
  }
}

/**
 * A session error the peer's HTTP/2 caused (bad frames, a GOAWAY with an error code), as opposed
 * to its TCP connection ending: clients such as grpc-go close theirs with a reset, which node
 * reports as ECONNRESET on the session and is not a protocol error.
 */
function isProtocolError(err: NodeJS.ErrnoException): boolean {
  return typeof err.code === "string" && err.code.startsWith("ERR_HTTP2");
}

/** The size of a header list as RFC 9113 §6.5.2 counts it: name and value octets plus 32 per field. */
function headerListSize(rawHeaders: string[]): number {
  let size = 16 * rawHeaders.length;
  for (const s of rawHeaders) size += s.length;
  return size;
}

function requestBody(
  stream: http2.ServerHttp2Stream,
  h: http2.IncomingHttpHeaders,
  flags: number,
): RequestBody {
  if ((flags & endStreamFlag) !== 0) return { kind: "empty" };
  const length = h["content-length"];
  return { kind: "stream", stream, length: length === undefined ? undefined : Number(length) };
}

function respondEmpty(stream: http2.ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.headersSent) {
    stream.destroy();
    return;
  }
  try {
    stream.respond({ ":status": status }, { endStream: true });
  } catch {
    stream.destroy();
  }
}

function writeResponse(stream: http2.ServerHttp2Stream, resp: ProxyResponse): void {
  if (stream.destroyed || stream.closed) {
    discardBody(resp.body);
    return;
  }
  const body = resp.body;
  if (Buffer.isBuffer(body)) {
    try {
      stream.respond({ ...resp.headers, ":status": resp.status });
      stream.end(body);
    } catch {
      respondEmpty(stream, 502);
    }
    return;
  }
  try {
    stream.respond(
      { ...resp.headers, ":status": resp.status },
      { endStream: body === null, waitForTrailers: body !== null },
    );
  } catch {
    discardBody(body);
    respondEmpty(stream, 502);
    return;
  }
  if (body === null) return;
  stream.once("wantTrailers", () => {
    try {
      stream.sendTrailers(resp.trailers() ?? {});
    } catch {
      stream.close();
    }
  });
  pipeBody(body, stream, () => (resetByUpstream(body) ? stream.close(INTERNAL_ERROR) : stream.end()));
}

/**
 * Whether a response body from an upstream HTTP/2 stream ended because the upstream reset it:
 * node:http2 ends such a body (reset with CANCEL) as if END_STREAM had come, and a response cut
 * short must not reach the client as a complete one (RFC 9113 §8.1). A reset with NO_ERROR
 * before END_STREAM cannot be told apart from a complete stream through node:http2.
 */
function resetByUpstream(body: Readable): boolean {
  const code = (body as Partial<http2.Http2Stream>).rstCode;
  return code !== undefined && code !== http2.constants.NGHTTP2_NO_ERROR;
}
