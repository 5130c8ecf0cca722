/**
 * The one HTTP/2 connection from this proxy to the destination service, shared by every watch,
 * and the proof that it is alive: an HTTP/2 PING every `pingIntervalMs`, and a connection whose
 * PING is not acknowledged within `pingTimeoutMs` is destroyed, so its watches reconnect. Without
 * it a silent connection (a frozen or partitioned destination, a middlebox that dropped the flow)
 * would hold every watch on stale state for ever. No server support is needed: every HTTP/2
 * server acknowledges PINGs, and a stopped process cannot.
 *
 * Also owns the outage as a state: `connected`, one warning when the destination
 * becomes unreachable and one when it is reachable again (with how long it was not), not one per
 * retry. A graceful GOAWAY (a destination pod restarting) is a reconnect, not an outage.
 *
 * Does not own watches, retries or back-off (discovery-client.ts).
 */
import http2 from "node:http2";
import { type ControlPlaneTls, connectControlPlane } from "./control-plane-client.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { BundleLog } from "./trust-bundle.ts";

export interface ConnectionOptions {
  url: string;
  serverIdentity: string | undefined;
  security: ControlPlaneTls;
  connectTimeoutMs: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
}

export class DestinationConnection {
  private current: http2.ClientHttp2Session | undefined;
  /** Start of the current outage, and what caused it; undefined while reachable. */
  private down: { since: number; reason: string } | undefined;
  private closing = false;
  /** A session is up, has heard from the destination, and answers PINGs. */
  connected = false;

  constructor(
    private readonly options: ConnectionOptions,
    private readonly metrics: ProxyMetrics,
    private readonly log: BundleLog,
  ) {}

  /** Whether the destination is unreachable now, since when and why. */
  outage(): { since: number; reason: string } | undefined {
    return this.down;
  }

  /**
   * The shared session, a new one when the last has gone away. Throws when none can be opened
   * now (no leaf to present yet, no trust bundle); the caller retries.
   */
  session(): http2.ClientHttp2Session {
    const s = this.current;
    if (s && !s.closed && !s.destroyed) return s;
    const o = this.options;
    let fresh: http2.ClientHttp2Session;
    try {
      fresh = connectControlPlane(o.url, o.serverIdentity, o.security, o.connectTimeoutMs);
    } catch (err) {
      // Nothing to connect with yet (no leaf to present): not an outage of the destination.
      this.metrics.discoveryReconnects.inc(["no_client_certificate"]);
      throw err;
    }
    this.current = fresh;
    let lastError = "";
    let pingTimedOut = false;
    let graceful = false;
    fresh.on("error", (err: Error) => {
      lastError = err.message;
    });
    // Connected is not alive: over h2c a frozen process still completes TCP handshakes. The
    // destination is reachable once it has said something (its SETTINGS); PINGs from connect on.
    fresh.once("connect", () => {
      this.keepAlive(fresh, () => {
        pingTimedOut = true;
        lastError = `no PING answer within ${o.pingTimeoutMs} ms`;
      });
    });
    fresh.once("remoteSettings", () => {
      if (this.current === fresh) this.reachable();
    });
    fresh.once("goaway", (code: number) => {
      graceful = code === http2.constants.NGHTTP2_NO_ERROR;
      if (this.current === fresh) this.current = undefined;
    });
    fresh.once("close", () => {
      if (this.current === fresh) this.current = undefined;
      if (this.closing || graceful) {
        if (this.current === undefined) this.connected = false;
        return;
      }
      const reason = pingTimedOut ? "ping_timeout" : fresh.connecting ? "connect_failed" : "closed";
      this.lost(reason, lastError || "connection closed");
    });
    return fresh;
  }

  close(): void {
    this.closing = true;
    this.current?.close();
  }

  /** PINGs the session; one not answered in time destroys it (its watches then reconnect). */
  private keepAlive(session: http2.ClientHttp2Session, timedOut: () => void): void {
    const { pingIntervalMs, pingTimeoutMs } = this.options;
    let outstanding: NodeJS.Timeout | undefined;
    const timer = setInterval(() => {
      if (outstanding !== undefined || session.closed || session.destroyed) return;
      outstanding = setTimeout(() => {
        timedOut();
        session.destroy();
      }, pingTimeoutMs);
      try {
        session.ping((err) => {
          clearTimeout(outstanding);
          outstanding = undefined;
          if (err && !session.destroyed) session.destroy();
        });
      } catch {
        clearTimeout(outstanding);
        outstanding = undefined;
      }
    }, pingIntervalMs);
    timer.unref();
    session.once("close", () => {
      clearInterval(timer);
      clearTimeout(outstanding);
    });
  }

  private reachable(): void {
    this.connected = true;
    const d = this.down;
    if (!d) return;
    this.down = undefined;
    this.log.warn(
      {
        url: this.options.url,
        unreachableSeconds: Math.round((Date.now() - d.since) / 1000),
        cause: d.reason,
      },
      "destination service reachable again",
    );
  }

  private lost(reason: string, detail: string): void {
    this.connected = false;
    if (this.closing) return;
    this.metrics.discoveryReconnects.inc([reason]);
    if (this.down) return;
    this.down = { since: Date.now(), reason: detail };
    this.log.warn(
      { url: this.options.url, reason, err: detail },
      "destination service unreachable; serving last known state, reconnecting with back-off",
    );
  }
}
