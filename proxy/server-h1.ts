/**
 * HTTP/1.1 server side of a listener: turns requests on accepted sockets into `ProxyRequest`s
 * for a stack and writes the stack's responses back, with explicit limits (header size,
 * header timeout, idle timeout) and graceful drain.
 *
 * Owns: the node:http server (never listening itself — listener.ts hands it sockets after
 * protocol detection) and per-socket bookkeeping. Does not route or forward.
 */
import http from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { pipeBody } from "./body.ts";
import { Cancellation } from "./cancellation.ts";
import type { ConnectionContext, Handler, ProxyRequest, ProxyResponse, RequestBody } from "./handler.ts";
import { forwardableHeaders } from "./headers.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";

export interface ServerLimits {
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
}

interface SocketState {
  conn: ConnectionContext;
  active: number;
  /** True while the connection owes us a request head (at start and between requests). */
  awaitingHead: boolean;
  headerTimer: NodeJS.Timeout | undefined;
}

const badRequest = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
const headersTooLarge =
  "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

export class H1Server {
  private readonly server: http.Server;
  private readonly sockets = new Map<Socket, SocketState>();
  private draining = false;

  constructor(
    private readonly handler: Handler,
    private readonly limits: ServerLimits,
    private readonly metrics: ProxyMetrics,
    private readonly direction: string,
  ) {
    this.server = http.createServer({
      maxHeaderSize: limits.maxHeaderBytes,
      requestTimeout: 0,
      // Advertised in Keep-Alive: timeout=N; matches the header timer re-armed after each response.
      keepAliveTimeout: Math.min(limits.headerTimeoutMs, limits.idleTimeoutMs),
      noDelay: true,
    });
    this.server.timeout = limits.idleTimeoutMs;
    this.server.on("request", (req, res) => this.onRequest(req, res));
    this.server.on("clientError", (err, socket) => this.onClientError(err as NodeJS.ErrnoException, socket));
    // Upgrades and CONNECT are not proxied; refuse them instead of leaving the socket hanging.
    this.server.on("upgrade", (_req, socket: Duplex) => socket.end(badRequest));
    this.server.on("connect", (_req, socket: Duplex) => socket.end(badRequest));
  }

  /** Takes over an accepted socket whose first bytes (`prefix`) were read by detection. */
  accept(socket: Socket, conn: ConnectionContext, prefix: Buffer | undefined): void {
    const state: SocketState = { conn, active: 0, awaitingHead: true, headerTimer: undefined };
    this.sockets.set(socket, state);
    state.headerTimer = setTimeout(() => this.onHeaderTimeout(socket, state), this.limits.headerTimeoutMs);
    socket.once("close", () => {
      clearTimeout(state.headerTimer);
      this.sockets.delete(socket);
    });
    this.server.emit("connection", socket);
    if (prefix) socket.unshift(prefix);
    socket.resume();
  }

  /** Stops keep-alive: idle connections close now, busy ones after their response. */
  drain(): void {
    this.draining = true;
    for (const [socket, state] of this.sockets) if (state.active === 0) socket.destroy();
  }

  /** One timer per connection, re-armed with refresh() after each response (no allocation). */
  private onHeaderTimeout(socket: Socket, state: SocketState): void {
    if (!state.awaitingHead || state.active > 0) return;
    this.metrics.protocolErrors.inc([this.direction, "header_timeout"]);
    socket.destroy();
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === "ECONNRESET" || !socket.writable) {
      socket.destroy();
      return;
    }
    const overflow = err.code === "HPE_HEADER_OVERFLOW";
    this.metrics.protocolErrors.inc([this.direction, overflow ? "header_too_large" : "malformed"]);
    socket.end(overflow ? headersTooLarge : badRequest);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket as Socket;
    const state = this.sockets.get(socket);
    if (!state) {
      res.destroy();
      return;
    }
    state.awaitingHead = false;
    state.active++;
    const ac = new Cancellation();
    res.once("close", () => {
      state.active--;
      if (!res.writableFinished) ac.abort();
      if (this.draining) socket.destroySoon();
      else if (state.active === 0 && !socket.destroyed) {
        state.awaitingHead = true;
        state.headerTimer?.refresh();
      }
    });
    req.on("error", () => ac.abort());
    const preq = toProxyRequest(req, state.conn, ac);
    this.handler(preq).then(
      (resp) => this.writeResponse(res, resp),
      () => writeFailure(res),
    );
  }

  private writeResponse(res: http.ServerResponse, resp: ProxyResponse): void {
    if (res.destroyed) {
      resp.body?.destroy();
      return;
    }
    try {
      if (this.draining) resp.headers.connection = "close";
      res.writeHead(resp.status, resp.headers);
    } catch {
      resp.body?.destroy();
      writeFailure(res);
      return;
    }
    if (!resp.body) {
      res.end();
      return;
    }
    pipeBody(resp.body, res, () => {
      const trailers = resp.trailers();
      if (trailers && !res.hasHeader("content-length")) {
        try {
          res.addTrailers(trailers as http.OutgoingHttpHeaders);
        } catch {
          // A trailer Node refuses to encode is dropped rather than failing a finished body.
        }
      }
      res.end();
    });
  }
}

function writeFailure(res: http.ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(502, { "content-length": "0" });
  res.end();
}

function requestBody(req: http.IncomingMessage): RequestBody {
  const length = req.headers["content-length"];
  if (req.headers["transfer-encoding"] === undefined && (length === undefined || length === "0")) {
    return { kind: "empty" };
  }
  return { kind: "stream", stream: req, length: length === undefined ? undefined : Number(length) };
}

function toProxyRequest(
  req: http.IncomingMessage,
  conn: ConnectionContext,
  signal: Cancellation,
): ProxyRequest {
  return {
    method: req.method ?? "GET",
    scheme: "http",
    authority: req.headers.host ?? "",
    path: req.url ?? "/",
    headers: forwardableHeaders(req.headers),
    body: requestBody(req),
    version: "http/1.1",
    conn,
    signal,
    startedAt: performance.now(),
  };
}
