/**
 * The discovery protocol, client side: one HTTP/2 stream per watched authority,
 * `GET /v1/watch?authority=<host:port>`, answered with newline-delimited JSON updates; a 404
 * means "not a mesh service, connect to the authority directly". See docs/proxy.md.
 *
 * Owns: the watch streams, reconnection with back-off, the least-recently-used bound on
 * watched authorities and turning updates into `Service` state. Does not pick endpoints.
 */
import type http2 from "node:http2";
import { type ControlPlaneTls, connectControlPlane } from "./control-plane-client.ts";
import { parseDiscoveryUpdate, splitLines } from "./discovery-protocol.ts";
import type { PeakEwmaParams } from "./peak-ewma.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import { Service } from "./service.ts";
import type { BundleLog } from "./trust-bundle.ts";

export interface DiscoveryOptions {
  url: string;
  serverIdentity: string | undefined;
  security: ControlPlaneTls;
  maxServices: number;
  timeoutMs: number;
  connectTimeoutMs: number;
  ewma: PeakEwmaParams;
}

/** Resolution of an authority: a mesh service, or "direct" (connect to the authority itself). */
export type Resolution = Service | "direct";

const maxLineBytes = 1024 * 1024;

class Watch {
  service: Service;
  state: "pending" | "ready" | "direct" = "pending";
  private stream: http2.ClientHttp2Stream | undefined;
  private waiters: (() => void)[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    readonly authority: string,
    private readonly owner: Discovery,
  ) {
    this.service = new Service(authority, owner.options.ewma);
  }

  wait(timeoutMs: number): Promise<boolean> {
    if (this.state !== "pending") return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  open(): void {
    if (this.closed) return;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.owner.session().request({
        ":method": "GET",
        ":path": `/v1/watch?authority=${encodeURIComponent(this.authority)}`,
        accept: "application/x-ndjson",
      });
    } catch {
      this.retry();
      return;
    }
    this.stream = stream;
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      const status = Number(h[":status"]);
      if (status === 404) this.settle("direct");
      else if (status !== 200) stream.close();
    });
    stream.on("data", (chunk: string) => {
      try {
        const { lines, rest } = splitLines(pending, chunk, maxLineBytes);
        pending = rest;
        for (const line of lines) this.apply(line);
      } catch {
        this.owner.metrics.discoveryUpdates.inc(["invalid"]);
        stream.close();
      }
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      if (this.stream === stream) this.stream = undefined;
      this.retry();
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stream?.close();
  }

  private apply(line: string): void {
    try {
      this.service.apply(parseDiscoveryUpdate(JSON.parse(line)));
      this.failures = 0;
      this.owner.metrics.discoveryUpdates.inc(["applied"]);
      this.settle("ready");
    } catch (err) {
      this.owner.metrics.discoveryUpdates.inc(["invalid"]);
      this.owner.log.warn(
        { authority: this.authority, err: (err as Error).message },
        "discovery update rejected",
      );
    }
  }

  private settle(state: "ready" | "direct"): void {
    this.state = state;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Keeps the last known state and reconnects with capped exponential back-off. */
  private retry(): void {
    if (this.closed) return;
    this.failures++;
    const delay = Math.min(10_000, 100 * 2 ** Math.min(this.failures, 7));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), delay);
    this.retryTimer.unref();
  }
}

export class Discovery {
  private readonly watches = new Map<string, Watch>();
  private current: http2.ClientHttp2Session | undefined;

  constructor(
    readonly options: DiscoveryOptions,
    readonly metrics: ProxyMetrics,
    readonly log: BundleLog,
  ) {}

  /** The shared session to the destination service, reconnected when it has gone away. */
  session(): http2.ClientHttp2Session {
    const s = this.current;
    if (s && !s.closed && !s.destroyed) return s;
    const o = this.options;
    const fresh = connectControlPlane(o.url, o.serverIdentity, o.security, o.connectTimeoutMs);
    fresh.once("close", () => {
      if (this.current === fresh) this.current = undefined;
    });
    fresh.once("goaway", () => {
      if (this.current === fresh) this.current = undefined;
    });
    this.current = fresh;
    return fresh;
  }

  /** Resolves an authority, waiting for its first update; undefined if none came in time. */
  async resolve(authority: string): Promise<Resolution | undefined> {
    let watch = this.watches.get(authority);
    if (watch) {
      this.watches.delete(authority);
      this.watches.set(authority, watch);
    } else {
      watch = new Watch(authority, this);
      this.watches.set(authority, watch);
      this.evict();
      watch.open();
    }
    if (watch.state === "pending" && !(await watch.wait(this.options.timeoutMs))) return undefined;
    return watch.state === "direct" ? "direct" : watch.service;
  }

  close(): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    this.current?.close();
  }

  private evict(): void {
    while (this.watches.size > this.options.maxServices) {
      const oldest = this.watches.keys().next().value as string;
      this.watches.get(oldest)?.close();
      this.watches.delete(oldest);
    }
  }
}
