/**
 * Keep-alive connection pools for the HTTP/1.1 client: one pool per upstream (and, for mTLS,
 * per TLS generation), plaintext or mTLS connect with a deadline and TLS session resumption,
 * idle expiry, and retirement of pools whose TLS material was replaced (idle sockets close
 * now, busy ones when released).
 *
 * Make before break (issue 23): a new TLS generation retires the older pools of a peer once one
 * of its own connections is established (or `olderGenerationGraceMs` after it appeared); until
 * then idle older connections keep serving, while a connection with the new material is made
 * beside them. When no new connection can be opened at all (this proxy's leaf expired, the peer
 * refuses the new one), a request waits up to the connect timeout for a busy connection to the
 * peer to be released rather than fail: with the control plane down, the connections already
 * open carry the traffic.
 *
 * Owns: socket lifetimes between exchanges. Does not speak HTTP (client-h1.ts, h1-codec.ts).
 */
import net, { type Socket } from "node:net";
import tls from "node:tls";
import { ProxyError } from "./handler.ts";
import { SessionTickets } from "./tls-session-bounds.ts";
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
/** How long older-generation connections may still serve new requests after a new generation appears. */
export const olderGenerationGraceMs = 10_000;
/** Peers whose last TLS session we keep for resumption. */
const maxTlsSessions = 1024;

class Pool {
  readonly idle: Socket[] = [];
  busy = 0;
  retired = false;
  /** A connection of this pool's generation has been established. */
  proven = false;
  warming = false;
}

type Waiter = (lease: Lease) => void;

export interface Lease {
  socket: Socket;
  /** True when the socket served an earlier exchange (it may have been closed by the server). */
  reused: boolean;
  /** Return the socket for reuse (`reusable`) or close it. */
  release: (reusable: boolean) => void;
}

/** The pool key without its TLS generation: the peer and identity (or the plaintext address). */
function prefixOf(key: string): string {
  const at = key.lastIndexOf("@");
  return at === -1 || !key.includes("#") ? key : key.slice(0, at + 1);
}

/** The TLS generation at the end of an mTLS pool key. */
function generationOf(key: string): number {
  return Number(key.slice(key.lastIndexOf("@") + 1));
}

export class H1Pools {
  private readonly pools = new Map<string, Pool>();
  /**
   * The newest TLS session ticket per pool key (peer, identity and TLS generation): a new
   * connection to a peer resumes instead of a full handshake with two signatures and chain
   * checks. Keyed by generation, so a renewed leaf or bundle always starts afresh; never
   * offered past the notAfter of either certificate of the session (tls-session-bounds.ts).
   */
  private readonly tlsSessions = new SessionTickets(maxTlsSessions);
  /** Requests waiting for a connection to a peer to be released, by peer (key without generation). */
  private readonly waiters = new Map<string, Waiter[]>();

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
      if (target.identity !== undefined && this.hasOlder(target, key)) {
        setTimeout(() => this.retireOlder(target, key), olderGenerationGraceMs).unref();
      }
    }
    const p = pool;
    const idle = this.takeIdle(key, p);
    if (idle) return Promise.resolve(idle);
    if (target.identity !== undefined && !p.proven) {
      const older = this.olderIdle(target, key);
      if (older) {
        this.warmUp(target, key, p);
        return Promise.resolve(older);
      }
    }
    return this.connect(target, key).then(
      (s) => {
        this.adopt(target, key, p, s);
        p.busy++;
        return { socket: s, reused: false, release: (ok: boolean) => this.release(key, p, s, ok) };
      },
      (err: unknown) => this.waitForRelease(target, err),
    );
  }

  close(): void {
    for (const pool of this.pools.values()) for (const s of pool.idle) s.destroy();
    this.pools.clear();
  }

  private release(key: string, pool: Pool, socket: Socket, reusable: boolean): void {
    pool.busy--;
    const usable = reusable && !pool.retired && !socket.destroyed;
    const waiter = usable ? this.waiters.get(prefixOf(key))?.shift() : undefined;
    if (waiter) {
      pool.busy++;
      waiter({ socket, reused: true, release: (ok) => this.release(key, pool, socket, ok) });
    } else if (!usable || pool.idle.length >= maxIdlePerPool) {
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

  private takeIdle(key: string, p: Pool): Lease | undefined {
    for (let s = p.idle.pop(); s !== undefined; s = p.idle.pop()) {
      if (s.destroyed || !s.writable) continue;
      p.busy++;
      s.removeAllListeners("data");
      s.setTimeout(0);
      return { socket: s, reused: true, release: (ok) => this.release(key, p, s, ok) };
    }
    return undefined;
  }

  /** Event handlers of a pooled socket, and what its first connection proves. */
  private adopt(target: UpstreamTarget, key: string, p: Pool, s: Socket): void {
    s.on("error", () => {});
    s.on("timeout", () => s.destroy());
    s.on("close", () => {
      const i = p.idle.indexOf(s);
      if (i !== -1) p.idle.splice(i, 1);
      this.forgetIfEmpty(key, p);
    });
    if (!p.proven && target.identity !== undefined) {
      p.proven = true;
      this.retireOlder(target, key);
    }
  }

  private hasOlder(target: UpstreamTarget, currentKey: string): boolean {
    const prefix = targetPrefix(target);
    const current = generationOf(currentKey);
    for (const key of this.pools.keys())
      if (key.startsWith(prefix) && generationOf(key) < current) return true;
    return false;
  }

  /** An idle connection of an older generation of `target` (not yet retired). */
  private olderIdle(target: UpstreamTarget, currentKey: string): Lease | undefined {
    const prefix = targetPrefix(target);
    const current = generationOf(currentKey);
    for (const [key, pool] of this.pools) {
      if (!key.startsWith(prefix) || generationOf(key) >= current || pool.retired) continue;
      const lease = this.takeIdle(key, pool);
      if (lease) return lease;
    }
    return undefined;
  }

  /** Connects with the current material in the background; once it works, older pools retire. */
  private warmUp(target: UpstreamTarget, key: string, p: Pool): void {
    if (p.warming) return;
    p.warming = true;
    this.connect(target, key).then(
      (s) => {
        p.warming = false;
        p.busy++;
        this.adopt(target, key, p, s);
        this.release(key, p, s, true);
      },
      () => {
        // Tried again by a later request, no sooner than a connect timeout from now.
        setTimeout(() => {
          p.warming = false;
        }, this.limits.connectTimeoutMs).unref();
      },
    );
  }

  /**
   * No new connection could be made: take the next connection to the same peer that is released
   * (any generation not retired), waiting up to the connect timeout; else the connect error.
   */
  private waitForRelease(target: UpstreamTarget, err: unknown): Promise<Lease> {
    const prefix = target.identity === undefined ? targetKey(target, 0) : targetPrefix(target);
    const busy = [...this.pools].some(
      ([key, pool]) => prefixOf(key) === prefix && pool.busy > 0 && !pool.retired,
    );
    if (!busy) return Promise.reject(err);
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(prefix) ?? [];
      this.waiters.set(prefix, list);
      const waiter: Waiter = (lease) => {
        clearTimeout(timer);
        resolve(lease);
      };
      const timer = setTimeout(() => {
        const i = list.indexOf(waiter);
        if (i !== -1) list.splice(i, 1);
        if (list.length === 0 && this.waiters.get(prefix) === list) this.waiters.delete(prefix);
        reject(err);
      }, this.limits.connectTimeoutMs);
      list.push(waiter);
    });
  }

  /** Retires the pools of `target` from generations before `currentKey`'s (never newer ones). */
  private retireOlder(target: UpstreamTarget, currentKey: string): void {
    const prefix = targetPrefix(target);
    const current = generationOf(currentKey);
    for (const [key, pool] of this.pools) {
      if (!key.startsWith(prefix) || generationOf(key) >= current) continue;
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
        const tlsSocket = tls.connect({
          host: target.host,
          port: target.port,
          secureContext: context,
          ALPNProtocols: alpnFor(target, "http/1.1"),
          rejectUnauthorized: true,
          checkServerIdentity: this.tls.verifierFor(target.identity),
          session: this.tlsSessions.get(key),
        });
        tlsSocket.setNoDelay(true);
        tlsSocket.on("session", (ticket: Buffer) => this.tlsSessions.keep(key, ticket, tlsSocket));
        socket = tlsSocket;
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
