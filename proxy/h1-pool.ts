/**
 * Keep-alive connection pools for the HTTP/1.1 client: one pool per upstream (and, for mTLS,
 * per TLS generation), plaintext or mTLS connect with a deadline and TLS session resumption,
 * idle expiry, and retirement of pools whose TLS material was replaced (idle sockets close
 * now, busy ones when released).
 *
 * Owns: socket lifetimes between exchanges. Does not speak HTTP (client-h1.ts, h1-codec.ts).
 */
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { ProxyError } from "./handler.ts";
import {
  alpnFor,
  type ClientLimits,
  type ClientTls,
  startSession,
  targetKey,
  targetPrefix,
  type UpstreamTarget,
} from "./upstream.ts";

const maxIdlePerPool = 256;
/** Peers whose last TLS session we keep for resumption. */
const maxTlsSessions = 1024;

class Pool {
  readonly idle: Socket[] = [];
  busy = 0;
  retired = false;
}

export interface Lease {
  socket: Socket;
  /** True when the socket served an earlier exchange (it may have been closed by the server). */
  reused: boolean;
  /** Return the socket for reuse (`reusable`) or close it. */
  release: (reusable: boolean) => void;
}

export class H1Pools {
  private readonly pools = new Map<string, Pool>();
  /**
   * The newest TLS session ticket per pool key (peer, identity and TLS generation): a new
   * connection to a peer resumes instead of a full handshake with two signatures and chain
   * checks. Keyed by generation, so a renewed leaf or bundle always starts afresh.
   */
  private readonly tlsSessions = new Map<string, Buffer>();

  constructor(
    private readonly tls: ClientTls | undefined,
    private readonly limits: ClientLimits,
  ) {}

  /** An idle connection to `target`, or a new one. Rejects with ConnectFailed (nothing sent). */
  acquire(target: UpstreamTarget): Promise<Lease> {
    const generation = this.tls?.generation ?? 0;
    const key = targetKey(target, generation);
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new Pool();
      this.pools.set(key, pool);
      if (target.identity !== undefined) this.retireOlder(target, key);
    }
    const p = pool;
    for (let s = p.idle.pop(); s !== undefined; s = p.idle.pop()) {
      if (s.destroyed || !s.writable) continue;
      p.busy++;
      s.removeAllListeners("data");
      s.setTimeout(0);
      return Promise.resolve({ socket: s, reused: true, release: (ok) => this.release(key, p, s, ok) });
    }
    return this.connect(target, key).then((s) => {
      s.on("error", () => {});
      s.on("timeout", () => s.destroy());
      s.on("close", () => {
        const i = p.idle.indexOf(s);
        if (i !== -1) p.idle.splice(i, 1);
        this.forgetIfEmpty(key, p);
      });
      p.busy++;
      return { socket: s, reused: false, release: (ok: boolean) => this.release(key, p, s, ok) };
    });
  }

  close(): void {
    for (const pool of this.pools.values()) for (const s of pool.idle) s.destroy();
    this.pools.clear();
  }

  private release(key: string, pool: Pool, socket: Socket, reusable: boolean): void {
    pool.busy--;
    if (!reusable || pool.retired || socket.destroyed || pool.idle.length >= maxIdlePerPool) {
      socket.destroy();
    } else {
      pool.idle.push(socket);
      // Bytes from an idle upstream are a protocol error; so is silence past the idle timeout.
      socket.once("data", () => socket.destroy());
      socket.setTimeout(this.limits.idleTimeoutMs);
      socket.resume();
    }
    this.forgetIfEmpty(key, pool);
  }

  private forgetIfEmpty(key: string, pool: Pool): void {
    if (pool.busy === 0 && pool.idle.length === 0 && this.pools.get(key) === pool) this.pools.delete(key);
  }

  private keepTlsSession(key: string, ticket: Buffer): void {
    this.tlsSessions.delete(key);
    if (this.tlsSessions.size >= maxTlsSessions) {
      this.tlsSessions.delete(this.tlsSessions.keys().next().value as string);
    }
    this.tlsSessions.set(key, ticket);
  }

  private retireOlder(target: UpstreamTarget, currentKey: string): void {
    const prefix = targetPrefix(target);
    for (const [key, pool] of this.pools) {
      if (key === currentKey || !key.startsWith(prefix)) continue;
      pool.retired = true;
      for (const s of pool.idle.splice(0)) s.destroy();
      this.pools.delete(key);
      this.tlsSessions.delete(key);
    }
  }

  private connect(target: UpstreamTarget, key: string): Promise<Socket> {
    return new Promise((resolve, reject) => {
      let socket: Socket;
      if (target.identity === undefined) {
        socket = net.connect({ host: target.host, port: target.port, noDelay: true });
      } else {
        const context = this.tls?.clientContext();
        if (!this.tls || !context) {
          reject(new ProxyError("NoIdentity", "no local identity yet for mTLS", true));
          return;
        }
        socket = tls.connect({
          host: target.host,
          port: target.port,
          secureContext: context,
          ALPNProtocols: alpnFor(target, "http/1.1"),
          rejectUnauthorized: true,
          checkServerIdentity: this.tls.verifierFor(target.identity),
          session: this.tlsSessions.get(key),
        });
        socket.setNoDelay(true);
        socket.on("session", (ticket: Buffer) => this.keepTlsSession(key, ticket));
      }
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new ProxyError("ConnectFailed", err.message, true));
      };
      const timer = setTimeout(
        () => fail(new Error(`connect to ${target.host}:${target.port} timed out`)),
        this.limits.connectTimeoutMs,
      );
      socket.once("error", fail);
      socket.once(target.identity === undefined ? "connect" : "secureConnect", () => {
        if (
          target.identity !== undefined &&
          !startSession(socket as tls.TLSSocket, target, "http/1.1", "http/1.1")
        ) {
          fail(
            new Error(
              `${target.host}:${target.port} selected ALPN ${(socket as tls.TLSSocket).alpnProtocol}`,
            ),
          );
          return;
        }
        clearTimeout(timer);
        socket.off("error", fail);
        resolve(socket);
      });
    });
  }
}
