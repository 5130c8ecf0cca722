/**
 * HTTP/1.1 client side of the proxy: forwards a `ProxyRequest` over a keep-alive connection
 * pool, plaintext or mTLS, and hands back the streamed response.
 *
 * Owns: the per-target agents and their retirement when TLS material changes, connect
 * timeouts, and cancellation. Does not choose the target (layers/balance.ts).
 */
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";
import { sendBody } from "./body.ts";
import { type Headers, ProxyError, type ProxyRequest, type ProxyResponse } from "./handler.ts";
import { forwardableHeaders, forwardableTrailers } from "./headers.ts";
import { type ClientTls, targetKey, type UpstreamTarget } from "./upstream.ts";

export interface ClientLimits {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

class StaleConnection extends Error {
  constructor(override readonly cause: ProxyError) {
    super(cause.message);
  }
}

export class H1Client {
  private readonly agents = new Map<string, http.Agent>();

  constructor(
    private readonly tls: ClientTls | undefined,
    private readonly limits: ClientLimits,
  ) {}

  /**
   * A pooled connection the server closed while idle fails the request sent on it before any
   * response; that request was never processed, so it is sent once more on a new connection
   * when its body can be replayed.
   */
  async forward(req: ProxyRequest, target: UpstreamTarget): Promise<ProxyResponse> {
    try {
      return await this.forwardOnce(req, target);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      if (req.body.kind === "stream") throw err.cause;
      return this.forwardOnce(req, target);
    }
  }

  private forwardOnce(req: ProxyRequest, target: UpstreamTarget): Promise<ProxyResponse> {
    const agent = this.agentFor(target);
    return new Promise<ProxyResponse>((resolve, reject) => {
      let connected = false;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        if (upstream.reusedSocket && !(err instanceof ProxyError)) {
          reject(new StaleConnection(new ProxyError("UpstreamReset", err.message)));
          return;
        }
        reject(
          err instanceof ProxyError
            ? err
            : new ProxyError(connected ? "UpstreamReset" : "ConnectFailed", err.message, !connected),
        );
      };
      const headers: Headers = { ...req.headers, host: req.authority };
      if (req.body.kind === "buffered") headers["content-length"] = String(req.body.data.length);
      const upstream = (target.identity === undefined ? http : https).request({
        agent,
        host: target.host,
        port: target.port,
        method: req.method,
        path: req.path,
        headers,
      });
      upstream.on("socket", (socket: Socket) => {
        if (!socket.connecting) {
          connected = true;
          return;
        }
        const timer = setTimeout(() => {
          upstream.destroy(
            new ProxyError("ConnectFailed", `connect to ${target.host}:${target.port} timed out`, true),
          );
        }, this.limits.connectTimeoutMs);
        socket.once(target.identity === undefined ? "connect" : "secureConnect", () => {
          connected = true;
          clearTimeout(timer);
        });
        socket.once("close", () => clearTimeout(timer));
      });
      upstream.on("error", fail);
      upstream.on("response", (res) => {
        settled = true;
        res.on("error", () => {});
        resolve({
          status: res.statusCode ?? 502,
          headers: forwardableHeaders(res.headers),
          body: res,
          trailers: () => forwardableTrailers(res.trailers),
        });
      });
      req.signal.onAbort(() => upstream.destroy());
      sendBody(req.body, upstream, (err) => upstream.destroy(err));
    });
  }

  private agentFor(target: UpstreamTarget): http.Agent {
    const generation = this.tls?.generation ?? 0;
    const key = targetKey(target, generation);
    let agent = this.agents.get(key);
    if (agent) return agent;
    const common = {
      keepAlive: true,
      maxFreeSockets: 256,
      timeout: this.limits.idleTimeoutMs,
      noDelay: true,
    };
    if (target.identity === undefined) {
      agent = new http.Agent(common);
    } else {
      const context = this.tls?.clientContext();
      if (!this.tls || !context) throw new ProxyError("NoIdentity", "no local identity yet for mTLS", true);
      this.retireOlderGenerations(target, key);
      agent = new https.Agent({
        ...common,
        secureContext: context,
        ALPNProtocols: ["http/1.1"],
        rejectUnauthorized: true,
        checkServerIdentity: this.tls.verifierFor(target.identity),
      });
    }
    this.agents.set(key, agent);
    return agent;
  }

  /** Old agents stop pooling: idle sockets close now, busy ones close when their request ends. */
  private retireOlderGenerations(target: UpstreamTarget, currentKey: string): void {
    const prefix = `${target.host}:${target.port}#${target.identity}@`;
    for (const [key, agent] of this.agents) {
      if (key === currentKey || !key.startsWith(prefix)) continue;
      this.agents.delete(key);
      retire(agent);
    }
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

function retire(agent: http.Agent): void {
  (agent as http.Agent & { keepAlive: boolean }).keepAlive = false;
  for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
}
