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
import { sendBody } from "./body.ts";
import { olderGenerationGraceMs } from "./h1-pool.ts";
import { type Headers, ProxyError, type ProxyRequest, type ProxyResponse } from "./handler.ts";
import { forwardableHeaders, forwardableTrailers } from "./headers.ts";
import { type ClientLimits, type ClientTls, targetKey, type UpstreamTarget } from "./upstream.ts";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, HTTP2_FLAG_END_STREAM } = {
  ...http2.constants,
  HTTP2_FLAG_END_STREAM: 0x1,
};

interface PooledSession {
  session: http2.ClientHttp2Session;
  connected: boolean;
  generation: number;
  /** Streams opened and not yet closed. */
  inflight: number;
  /** Takes no new streams; closed once its last stream is. */
  retired: boolean;
}

function usable(p: PooledSession | undefined): PooledSession | undefined {
  return p && !p.session.closed && !p.session.destroyed ? p : undefined;
}

export class H2Client {
  private readonly sessions = new Map<string, PooledSession>();
  /** When the last session of a pool key failed before connecting (throttles new attempts). */
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly tls: ClientTls | undefined,
    private readonly limits: ClientLimits,
  ) {}

  forward(req: ProxyRequest, target: UpstreamTarget): Promise<ProxyResponse> {
    const pooled = this.sessionFor(target);
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
        stream = pooled.session.request(headers, { endStream: req.body.kind === "empty" });
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
        if (--pooled.inflight === 0 && pooled.retired) pooled.session.close();
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
          headers: forwardableHeaders(h),
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
    const existing = usable(this.sessions.get(key));
    if (existing?.connected || target.identity === undefined)
      return existing ?? this.open(target, key, generation);
    // mTLS, and no connected session of the current generation yet: an older one serves meanwhile.
    const older = this.olderConnected(target, generation);
    if (existing) return older ?? existing;
    if (older && (this.failedAt.get(key) ?? 0) > Date.now() - this.limits.connectTimeoutMs) return older;
    try {
      const fresh = this.open(target, key, generation);
      return older ?? fresh;
    } catch (err) {
      if (older) return older;
      throw err;
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
    pooled.session.on("close", forget);
    pooled.session.on("goaway", forget);
    pooled.session.on("error", forget);
    if (target.identity !== undefined) {
      pooled.session.once("connect", () => {
        this.failedAt.delete(key);
        this.retireOlderGenerations(target, generation);
      });
      if (this.olderConnected(target, generation)) {
        setTimeout(() => this.retireOlderGenerations(target, generation), olderGenerationGraceMs).unref();
      }
    }
    return pooled;
  }

  /** A connected session to `target` made with an older TLS generation, if one is still open. */
  private olderConnected(target: UpstreamTarget, generation: number): PooledSession | undefined {
    const prefix = `${target.host}:${target.port}#${target.identity}@`;
    for (const [key, pooled] of this.sessions) {
      if (key.startsWith(prefix) && pooled.generation < generation && usable(pooled)?.connected)
        return pooled;
    }
    return undefined;
  }

  private connect(target: UpstreamTarget, generation: number): PooledSession {
    const host = target.host.includes(":") ? `[${target.host}]` : target.host;
    let session: http2.ClientHttp2Session;
    if (target.identity === undefined) {
      session = http2.connect(`http://${host}:${target.port}`);
    } else {
      const context = this.tls?.clientContext();
      if (!this.tls || !context) throw new ProxyError("NoIdentity", "no local identity yet for mTLS", true);
      session = http2.connect(`https://${host}:${target.port}`, {
        secureContext: context,
        ALPNProtocols: ["h2"],
        rejectUnauthorized: true,
        checkServerIdentity: this.tls.verifierFor(target.identity),
      });
    }
    const pooled: PooledSession = { session, connected: false, generation, inflight: 0, retired: false };
    const timer = setTimeout(
      () => session.destroy(new Error("connect timed out")),
      this.limits.connectTimeoutMs,
    );
    session.once("connect", () => {
      pooled.connected = true;
      clearTimeout(timer);
    });
    session.once("close", () => clearTimeout(timer));
    session.on("error", () => {});
    session.setTimeout(this.limits.idleTimeoutMs, () => session.close());
    return pooled;
  }

  /**
   * Sessions made with older TLS material take no new streams, and get GOAWAY once their streams
   * are done.
   */
  private retireOlderGenerations(target: UpstreamTarget, generation: number): void {
    const prefix = `${target.host}:${target.port}#${target.identity}@`;
    for (const [key, pooled] of this.sessions) {
      if (!key.startsWith(prefix) || pooled.generation >= generation) continue;
      this.sessions.delete(key);
      pooled.retired = true;
      if (pooled.inflight === 0) pooled.session.close();
    }
  }

  close(): void {
    for (const pooled of this.sessions.values()) pooled.session.close();
    this.sessions.clear();
  }
}
