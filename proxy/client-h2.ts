/**
 * HTTP/2 client side of the proxy: one multiplexed session per upstream (h2c or mTLS with
 * ALPN h2), streams forwarded with their trailers.
 *
 * Owns: the session pool, session health (GOAWAY, errors, idle timeout), connect timeouts and
 * stream cancellation. Does not choose the target (layers/balance.ts).
 */
import http2 from "node:http2";
import { sendBody } from "./body.ts";
import { type Headers, ProxyError, type ProxyRequest, type ProxyResponse } from "./handler.ts";
import { forwardableResponseHeaders, forwardableTrailers } from "./headers.ts";
import { type ClientLimits, type ClientTls, targetKey, type UpstreamTarget } from "./upstream.ts";

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, HTTP2_FLAG_END_STREAM } = {
  ...http2.constants,
  HTTP2_FLAG_END_STREAM: 0x1,
};

interface PooledSession {
  session: http2.ClientHttp2Session;
  connected: boolean;
}

export class H2Client {
  private readonly sessions = new Map<string, PooledSession>();

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
    if (existing && !existing.session.closed && !existing.session.destroyed) return existing;
    const pooled = this.connect(target);
    this.sessions.set(key, pooled);
    const forget = () => {
      if (this.sessions.get(key) === pooled) this.sessions.delete(key);
    };
    pooled.session.on("close", forget);
    pooled.session.on("goaway", forget);
    pooled.session.on("error", forget);
    if (target.identity !== undefined) this.retireOlderGenerations(target, key);
    return pooled;
  }

  private connect(target: UpstreamTarget): PooledSession {
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
    const pooled: PooledSession = { session, connected: false };
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

  /** Sessions made with older TLS material get GOAWAY: in-flight streams finish, no new ones start. */
  private retireOlderGenerations(target: UpstreamTarget, currentKey: string): void {
    const prefix = `${target.host}:${target.port}#${target.identity}@`;
    for (const [key, pooled] of this.sessions) {
      if (key === currentKey || !key.startsWith(prefix)) continue;
      this.sessions.delete(key);
      pooled.session.close();
    }
  }

  close(): void {
    for (const pooled of this.sessions.values()) pooled.session.close();
    this.sessions.clear();
  }
}
