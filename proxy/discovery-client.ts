/**
 * The discovery protocol, client side: one HTTP/2 stream per watched authority,
 * `GET /v1/watch?authority=<host:port>`, answered with newline-delimited JSON updates; a 404
 * means "not a mesh service, connect to the authority directly". See docs/proxy.md.
 *
 * Survives its control plane (docs/proxy.md, "When the control plane fails"):
 * - a watch keeps its last known state while its stream is down and reconnects with jittered
 *   back-off, so a fleet does not retry in lockstep;
 * - a stream that gets no first answer within `timeoutMs` is cancelled and retried;
 * - an authority with no answer within `timeoutMs` of its first request is *unresolved*: its
 *   requests are answered at once with 503 (fail-fast) instead of each waiting the timeout,
 *   until an answer comes; the watch keeps retrying meanwhile.
 *
 * Owns: the watch streams, their retries, the least-recently-used bound on watched authorities
 * and turning updates into `Service` state. Does not own the connection or its liveness
 * (destination-connection.ts), and does not pick endpoints.
 */
import http2 from "node:http2";
import { backoffDelayMs } from "./backoff.ts";
import type { ControlPlaneTls } from "./control-plane-client.ts";
import { DestinationConnection } from "./destination-connection.ts";
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
  pingIntervalMs: number;
  pingTimeoutMs: number;
  ewma: PeakEwmaParams;
}

/** Resolution of an authority: a mesh service, or "direct" (connect to the authority itself). */
export type Resolution = Service | "direct";

const maxLineBytes = 1024 * 1024;
/** Watch retries: ~0.1–0.2 s first, doubling, at most 10 s; jittered (backoff.ts). */
const watchBackoff = { baseMs: 200, capMs: 10_000 };

class Watch {
  service: Service;
  state: "pending" | "ready" | "direct" | "unresolved" = "pending";
  private stream: http2.ClientHttp2Stream | undefined;
  private waiters: ((settled: boolean) => void)[] = [];
  private pendingTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(
    readonly authority: string,
    private readonly owner: Discovery,
  ) {
    this.service = new Service(authority, owner.options.ewma);
    this.pendingTimer = setTimeout(() => this.unresolved(), owner.options.timeoutMs);
    this.pendingTimer.unref();
  }

  /** Resolves true once answered; false if still unanswered after `timeoutMs` (or at once if known unresolved). */
  wait(): Promise<boolean> {
    if (this.state === "ready" || this.state === "direct") return Promise.resolve(true);
    if (this.state === "unresolved") return Promise.resolve(false);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  get retrying(): boolean {
    return this.retryTimer !== undefined && this.stream === undefined;
  }

  open(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.owner.connection.session().request({
        ":method": "GET",
        ":path": `/v1/watch?authority=${encodeURIComponent(this.authority)}`,
        accept: "application/x-ndjson",
      });
    } catch {
      this.retry();
      return;
    }
    this.stream = stream;
    // A stream that never answers (a destination that accepted it and went silent, or never
    // serves this authority) is cancelled and retried, not waited on for ever.
    let answered = false;
    const deadline = setTimeout(() => {
      this.owner.metrics.discoveryReconnects.inc(["no_first_answer"]);
      stream.close(http2.constants.NGHTTP2_CANCEL);
    }, this.owner.options.timeoutMs);
    deadline.unref();
    const answer = () => {
      answered = true;
      clearTimeout(deadline);
    };
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      const status = Number(h[":status"]);
      if (status === 404) {
        answer();
        this.failures = 0;
        this.settle("direct");
      } else if (status !== 200) stream.close();
    });
    stream.on("data", (chunk: string) => {
      try {
        const { lines, rest } = splitLines(pending, chunk, maxLineBytes);
        pending = rest;
        for (const line of lines) if (this.apply(line) && !answered) answer();
      } catch {
        this.owner.metrics.discoveryUpdates.inc(["invalid"]);
        stream.close();
      }
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      clearTimeout(deadline);
      if (this.stream === stream) this.stream = undefined;
      this.retry();
    });
  }

  /** Brings a scheduled retry forward (new client material, or the connection is back). */
  retrySoon(): void {
    if (!this.retrying) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), Math.round(Math.random() * 250));
    this.retryTimer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.pendingTimer);
    if (this.state === "unresolved") this.owner.unresolvedChanged(this, false, true);
    this.stream?.close();
  }

  /** Applies one line; true when it was a valid update. */
  private apply(line: string): boolean {
    try {
      this.service.apply(parseDiscoveryUpdate(JSON.parse(line)));
    } catch (err) {
      this.owner.metrics.discoveryUpdates.inc(["invalid"]);
      this.owner.log.warn(
        { authority: this.authority, err: (err as Error).message },
        "discovery update rejected",
      );
      return false;
    }
    this.failures = 0;
    this.owner.updated();
    this.settle("ready");
    return true;
  }

  private settle(state: "ready" | "direct"): void {
    clearTimeout(this.pendingTimer);
    if (this.state === "unresolved") this.owner.unresolvedChanged(this, false);
    this.state = state;
    for (const w of this.waiters.splice(0)) w(true);
  }

  /** No answer in time: requests fail fast from now on, until one comes. */
  private unresolved(): void {
    if (this.state !== "pending" || this.closed) return;
    this.state = "unresolved";
    this.owner.unresolvedChanged(this, true);
    for (const w of this.waiters.splice(0)) w(false);
  }

  /** Keeps the last known state and reconnects with capped, jittered exponential back-off. */
  private retry(): void {
    if (this.closed) return;
    this.failures++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.open(), backoffDelayMs(watchBackoff, this.failures));
    this.retryTimer.unref();
  }
}

export class Discovery {
  readonly connection: DestinationConnection;
  private readonly watches = new Map<string, Watch>();
  private unresolvedCount = 0;
  private lastUpdateAt: number | undefined;

  constructor(
    readonly options: DiscoveryOptions,
    readonly metrics: ProxyMetrics,
    readonly log: BundleLog,
  ) {
    this.connection = new DestinationConnection(options, metrics, log);
    metrics.discoveryConnected.sample = () =>
      this.watches.size === 0 ? undefined : this.connection.connected ? 1 : 0;
    metrics.discoveryUpdateAge.sample = () =>
      this.lastUpdateAt === undefined ? undefined : Math.round((Date.now() - this.lastUpdateAt) / 1000);
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
    if (watch.state === "unresolved") this.metrics.discoveryFailFast.inc([]);
    if (!(await watch.wait())) return undefined;
    return watch.state === "direct" ? "direct" : watch.service;
  }

  /** Watches waiting to retry try again now (called when a new leaf is installed). */
  retrySoon(): void {
    for (const w of this.watches.values()) w.retrySoon();
  }

  /** What is degraded about discovery now, in a sentence for `/ready`; undefined when nothing. */
  degradation(): string | undefined {
    const parts: string[] = [];
    const down = this.connection.outage();
    if (down) {
      parts.push(
        `destination service unreachable since ${new Date(down.since).toISOString()} (${down.reason}); serving last known state`,
      );
    }
    if (this.unresolvedCount > 0) {
      parts.push(`${this.unresolvedCount} authorities unresolved, answered with 503 at once`);
    }
    return parts.length > 0 ? `discovery: ${parts.join("; ")}` : undefined;
  }

  close(): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
    this.connection.close();
  }

  /** Called by a watch on each valid update. */
  updated(): void {
    this.lastUpdateAt = Date.now();
    this.metrics.discoveryUpdates.inc(["applied"]);
  }

  /** Called by a watch entering or leaving the unresolved (fail-fast) state. */
  unresolvedChanged(watch: Watch, entered: boolean, evicted = false): void {
    this.unresolvedCount += entered ? 1 : -1;
    this.metrics.discoveryUnresolved.set([], this.unresolvedCount);
    if (evicted) return;
    const fields = { authority: watch.authority, unresolved: this.unresolvedCount };
    if (entered) {
      this.log.warn(
        { ...fields, timeoutMs: this.options.timeoutMs },
        "authority unresolved: no discovery answer in time; its requests fail fast with 503 until one comes",
      );
    } else this.log.warn(fields, "authority resolved again");
  }

  private evict(): void {
    while (this.watches.size > this.options.maxServices) {
      const oldest = this.watches.keys().next().value as string;
      this.watches.get(oldest)?.close();
      this.watches.delete(oldest);
    }
  }
}
