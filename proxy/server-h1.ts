/**
 * HTTP/1.1 server side of a listener: parses requests on accepted sockets into
 * `ProxyRequest`s for a stack and writes the stack's responses back, speaking the wire format
 * directly (h1-codec.ts) — node:http's server objects cost more per request than the proxy's
 * own work. Limits are explicit: header size (431), malformed input (400), header timeout
 * (slow clients), idle timeout, ambiguous framing (refused), and graceful drain.
 *
 * Owns: connections handed over by listener.ts after detection, one exchange at a time
 * (pipelined requests wait). Does not route or forward.
 */
import type { Socket } from "node:net";
import type { ConnectionContext, Handler } from "./handler.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import { H1Connection } from "./server-h1-connection.ts";
import type { H1ServerShared, ServerLimits } from "./server-h1-shared.ts";

export type { ServerLimits } from "./server-h1-shared.ts";

export class H1Server {
  private readonly connections = new Set<H1Connection>();
  private readonly shared: H1ServerShared;

  constructor(
    handler: Handler,
    limits: ServerLimits,
    metrics: ProxyMetrics,
    direction: string,
    closeEach = false,
  ) {
    const seconds = Math.floor(limits.idleTimeoutMs / 1000);
    const keepAliveHint = seconds >= 2 ? `keep-alive: timeout=${seconds}\r\n` : "";
    this.shared = { handler, limits, metrics, direction, draining: false, keepAliveHint, closeEach };
  }

  /** Takes over an accepted socket whose first bytes (`prefix`) were read by detection. */
  accept(socket: Socket, conn: ConnectionContext, prefix: Buffer | undefined): void {
    const c = new H1Connection(this.shared, socket, conn);
    this.connections.add(c);
    socket.once("close", () => this.connections.delete(c));
    c.start(prefix);
  }

  /** Stops keep-alive: idle connections close now, busy ones after their response. */
  drain(): void {
    this.shared.draining = true;
    for (const c of this.connections) c.drain();
  }
}
