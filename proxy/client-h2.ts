/**
 * HTTP/2 client side of the proxy: one multiplexed session per upstream (h2c or mTLS with
 * ALPN h2), streams forwarded with their trailers.
 *
 * Owns: the session pool, session health (GOAWAY, errors, idle timeout), connect timeouts and
 * stream cancellation. Does not choose the target (layers/balance.ts).
 */
import http2 from "node:http2";
import tls from "node:tls";
import { sendBody } from "./body.ts";
import { type Headers, ProxyError, type ProxyRequest, type ProxyResponse } from "./handler.ts";
import { forwardableResponseHeaders, forwardableTrailers } from "./headers.ts";
import {
  alpnFor,
  type ClientLimits,
  type ClientTls,
  startSession,
  targetKey,
  targetPrefix,
  type UpstreamTarget,
} from "./upstream.ts";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, HTTP2_FLAG_END_STREAM } = {
  ...http2.constants,
  HTTP2_FLAG_END_STREAM: 0x1,
};

interface PooledSession {
  /** Undefined while a transport-header connection is still being set up (`ready`). */
  session: http2.ClientHttp2Session | undefined;
  ready: Promise<http2.ClientHttp2Session>;
  connected: boolean;
  failed: boolean;
}

export class H2Client {
  private readonly sessions = new Map<string, PooledSession>();

  constructor(
    private readonly tls: ClientTls | undefined,
    private readonly limits: ClientLimits,
  ) {}

  async forward(req: ProxyRequest, target: UpstreamTarget): Promise<ProxyResponse> {
    const pooled = this.sessionFor(target);
    let session: http2.ClientHttp2Session;
    try {
      session = pooled.session ?? (await pooled.ready);
    } catch (err) {
      throw new ProxyError("ConnectFailed", (err as Error).message, true);
    }
    return new Promise<ProxyResponse>((resolve, reject) => {
      const headers: http2.OutgoingHttpHeaders = {
        ...req.headers,
        ":method": req.method,
        ":path": req.path,
        ":authority": req.authority,
        ":scheme": req.scheme,
      };
      if (req.body.kind === "buffered") headers["content-length"] = String(req.body.data.length);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers, { endStream: req.body.kind === "empty" });
      } catch (err) {
        reject(new ProxyError("ConnectFailed", (err as Error).message, true));
        return;
      }
      let settled = false;
      let trailers: Headers | undefined;
      stream.on("trailers", (t) => {
        trailers = forwardableTrailers(t);
      });
      stream.on("error", (err) => {
        if (settled) return;
        settled = true;
        const refused = stream.rstCode === NGHTTP2_REFUSED_STREAM;
        const beforeSend = refused || !pooled.connected;
        reject(new ProxyError(beforeSend ? "ConnectFailed" : "UpstreamReset", err.message, beforeSend));
      });
      stream.on("close", () => {
        if (settled) return;
        settled = true;
        reject(
          new ProxyError("UpstreamReset", `stream closed with code ${stream.rstCode}`, !pooled.connected),
        );
      });
      stream.on("response", (h, flags) => {
        settled = true;
        const ended = (flags & HTTP2_FLAG_END_STREAM) !== 0;
        if (ended) stream.resume();
        resolve({
          status: Number(h[":status"] ?? 502),
          headers: forwardableResponseHeaders(h),
          body: ended ? null : stream,
          trailers: () => trailers,
        });
      });
      const cancel = () => {
        if (!stream.closed) stream.close(NGHTTP2_CANCEL);
      };
      req.signal.onAbort(cancel);
      if (req.body.kind !== "empty") sendBody(req.body, stream, () => cancel());
    });
  }

  private sessionFor(target: UpstreamTarget): PooledSession {
    const generation = this.tls?.generation ?? 0;
    const key = targetKey(target, generation);
    const existing = this.sessions.get(key);
    const usable = (p: PooledSession) =>
      !p.failed && (!p.session || (!p.session.closed && !p.session.destroyed));
    if (existing && usable(existing)) return existing;
    const pooled = this.connect(target);
    this.sessions.set(key, pooled);
    const forget = () => {
      if (this.sessions.get(key) === pooled) this.sessions.delete(key);
    };
    pooled.ready.then(
      (session) => {
        session.on("close", forget);
        session.on("goaway", forget);
        session.on("error", forget);
      },
      () => {
        pooled.failed = true;
        forget();
      },
    );
    if (target.identity !== undefined) this.retireOlderGenerations(target, key);
    return pooled;
  }

  private connect(target: UpstreamTarget): PooledSession {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    if (target.identity === undefined) return this.pooled(http2.connect(`http://${host}:${target.port}`));
    const context = this.tls?.clientContext();
    if (!this.tls || !context) throw new ProxyError("NoIdentity", "no local identity yet for mTLS", true);
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      secureContext: context,
      ALPNProtocols: alpnFor(target, "h2"),
      rejectUnauthorized: true,
      checkServerIdentity: this.tls.verifierFor(target.identity),
    });
    const url = `https://${host}:${target.port}`;
    if (target.targetPort === undefined)
      return this.pooled(http2.connect(url, { createConnection: () => socket }));
    // The transport header must be written, and its write finished, before node:http2 takes
    // the socket over (a write still in flight then trips an assertion inside Node).
    const pooled: PooledSession = {
      session: undefined,
      ready: Promise.resolve(undefined as never),
      connected: false,
      failed: false,
    };
    pooled.ready = new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const timer = setTimeout(
        () => socket.destroy(new Error("connect timed out")),
        this.limits.connectTimeoutMs,
      );
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once("error", fail);
      socket.once("secureConnect", () => {
        const attach = () => {
          clearTimeout(timer);
          socket.off("error", fail);
          const session = http2.connect(url, { createConnection: () => socket });
          this.watch(pooled, session, false);
          pooled.session = session;
          resolve(session);
        };
        if (!startSession(socket, target, "h2", "h2", attach))
          fail(new Error("peer selected no usable ALPN"));
      });
    });
    return pooled;
  }

  /** A pool entry for a session that node:http2 connects itself. */
  private pooled(session: http2.ClientHttp2Session): PooledSession {
    const pooled: PooledSession = {
      session,
      ready: Promise.resolve(session),
      connected: false,
      failed: false,
    };
    this.watch(pooled, session, true);
    return pooled;
  }

  private watch(pooled: PooledSession, session: http2.ClientHttp2Session, connecting: boolean): void {
    const timer = connecting
      ? setTimeout(() => session.destroy(new Error("connect timed out")), this.limits.connectTimeoutMs)
      : undefined;
    session.once("connect", () => {
      pooled.connected = true;
      clearTimeout(timer);
    });
    session.once("close", () => clearTimeout(timer));
    session.on("error", () => {});
    session.setTimeout(this.limits.idleTimeoutMs, () => session.close());
  }

  /** Sessions made with older TLS material get GOAWAY: in-flight streams finish, no new ones start. */
  private retireOlderGenerations(target: UpstreamTarget, currentKey: string): void {
    const prefix = targetPrefix(target);
    for (const [key, pooled] of this.sessions) {
      if (key === currentKey || !key.startsWith(prefix)) continue;
      this.sessions.delete(key);
      pooled.session?.close();
    }
  }

  close(): void {
    for (const pooled of this.sessions.values()) {
      pooled.session?.close();
      void pooled.ready.then(
        (s) => s.close(),
        () => {},
      );
    }
    this.sessions.clear();
  }
}
