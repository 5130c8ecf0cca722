/**
 * HTTP/2 client side of the proxy: one multiplexed session per upstream (h2c or mTLS with
 * ALPN h2), streams forwarded with their trailers.
 *
 * Make before break (issue 23): a session made with a new TLS generation replaces the older
 * sessions to its peer once it is connected (or `olderGenerationGraceMs` after it appeared);
 * until then, and while it cannot be made at all (this proxy's leaf expired, the peer refuses
 * the new one), an older connected session keeps carrying requests.
 *
 * Owns: the session pool, session health (GOAWAY, errors, idle timeout), connect timeouts and
 * stream cancellation. Does not choose the target (layers/balance.ts).
 */
import http2 from "node:http2";
import tls from "node:tls";
import { sendBody } from "./body.ts";
import { olderGenerationGraceMs } from "./h1-pool.ts";
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
  generation: number;
  /** Streams opened and not yet closed. */
  inflight: number;
  /** Takes no new streams; closed once its last stream is. */
  retired: boolean;
  /** Called once the session is connected. */
  onConnect?: () => void;
}

function usable(p: PooledSession | undefined): PooledSession | undefined {
  return p && !p.failed && (!p.session || (!p.session.closed && !p.session.destroyed)) ? p : undefined;
}

export class H2Client {
  private readonly sessions = new Map<string, PooledSession>();
  /** When the last session of a pool key failed before connecting (throttles new attempts). */
  private readonly failedAt = new Map<string, number>();

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
      pooled.inflight++;
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
        // A retired session is closed only now: closing it under a stream not yet on the wire
        // would refuse that stream (REFUSED_STREAM).
        if (--pooled.inflight === 0 && pooled.retired) session.close();
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
    const key = this.keyWithRoom(targetKey(target, generation));
    const current = usable(this.sessions.get(key));
    if (current?.connected || target.identity === undefined)
      return current ?? this.open(target, key, generation);
    // mTLS, and no connected session of the current generation yet: an older one serves meanwhile.
    const older = this.olderConnected(target, generation);
    if (current) return older ?? current;
    if (older && (this.failedAt.get(key) ?? 0) > Date.now() - this.limits.connectTimeoutMs) return older;
    try {
      const fresh = this.open(target, key, generation);
      return older ?? fresh;
    } catch (err) {
      if (older) return older;
      throw err;
    }
  }

  /**
   * The pool key, `base` or a sibling of it, of the first session with room for another stream.
   * Every client's requests to a peer share its sessions: once a session holds as many streams as
   * the peer's SETTINGS_MAX_CONCURRENT_STREAMS allows (RFC 9113 §5.1.2) — slow or body-less
   * requests, perhaps all of one client — further streams would queue behind them, so a sibling
   * session is opened instead. Sessions are closed when idle (`limits.idleTimeoutMs`).
   */
  private keyWithRoom(base: string): string {
    let key = base;
    for (let sibling = 1; ; sibling++) {
      const p = usable(this.sessions.get(key));
      const max = p?.session?.remoteSettings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
      if (!p?.connected || p.inflight < max) return key;
      key = `${base}/${sibling}`;
    }
  }

  private open(target: UpstreamTarget, key: string, generation: number): PooledSession {
    const pooled = this.connect(target, generation);
    this.sessions.set(key, pooled);
    const forget = () => {
      if (this.sessions.get(key) === pooled) this.sessions.delete(key);
      if (!pooled.connected) {
        if (this.failedAt.size >= 1024) this.failedAt.clear();
        this.failedAt.set(key, Date.now());
      }
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
    if (target.identity !== undefined) {
      pooled.onConnect = () => {
        this.failedAt.delete(key);
        this.retireOlderGenerations(target, generation);
      };
      if (this.olderConnected(target, generation)) {
        setTimeout(() => this.retireOlderGenerations(target, generation), olderGenerationGraceMs).unref();
      }
    }
    return pooled;
  }

  /** A connected session to `target` made with an older TLS generation, if one is still open. */
  private olderConnected(target: UpstreamTarget, generation: number): PooledSession | undefined {
    const prefix = targetPrefix(target);
    for (const [key, pooled] of this.sessions) {
      if (!key.startsWith(prefix) || pooled.generation >= generation || pooled.retired) continue;
      if (usable(pooled)?.connected) return pooled;
    }
    return undefined;
  }

  private connect(target: UpstreamTarget, generation: number): PooledSession {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    if (target.identity === undefined)
      return this.pooled(http2.connect(`http://${host}:${target.port}`), generation);
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
      return this.pooled(http2.connect(url, { createConnection: () => socket }), generation);
    // The transport header must be written, and its write finished, before node:http2 takes
    // the socket over (a write still in flight then trips an assertion inside Node).
    const pooled: PooledSession = {
      session: undefined,
      ready: Promise.resolve(undefined as never),
      connected: false,
      failed: false,
      generation,
      inflight: 0,
      retired: false,
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
  private pooled(session: http2.ClientHttp2Session, generation: number): PooledSession {
    const pooled: PooledSession = {
      session,
      ready: Promise.resolve(session),
      connected: false,
      failed: false,
      generation,
      inflight: 0,
      retired: false,
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
      pooled.onConnect?.();
    });
    session.once("close", () => clearTimeout(timer));
    session.on("error", () => {});
    session.setTimeout(this.limits.idleTimeoutMs, () => session.close());
  }

  /**
   * Sessions made with older TLS material take no new streams, and get GOAWAY once their streams
   * are done.
   */
  private retireOlderGenerations(target: UpstreamTarget, generation: number): void {
    const prefix = targetPrefix(target);
    for (const [key, pooled] of this.sessions) {
      if (!key.startsWith(prefix) || pooled.generation >= generation) continue;
      this.sessions.delete(key);
      pooled.retired = true;
      void pooled.ready.then(
        (s) => {
          if (pooled.inflight === 0) s.close();
        },
        () => {},
      );
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
