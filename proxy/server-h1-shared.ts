/**
 * What the HTTP/1.1 server (server-h1.ts) and each of its connections
 * (server-h1-connection.ts) share: limits, the per-listener state and reason phrases.
 *
 * Owns: these types and constants only, so the two files need not import each other.
 */
import { STATUS_CODES } from "node:http";
import type { Handler } from "./handler.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";

export interface ServerLimits {
  maxHeaderBytes: number;
  headerTimeoutMs: number;
  idleTimeoutMs: number;
}

/** What every connection of one listener shares. */
export interface H1ServerShared {
  handler: Handler;
  limits: ServerLimits;
  metrics: ProxyMetrics;
  direction: string;
  draining: boolean;
  /** Every response closes its connection (the servers that answer refused peers). */
  closeEach: boolean;
  /**
   * `keep-alive: timeout=N` telling clients when an idle connection will be closed (the
   * keep-alive idle wait, idleTimeoutMs), so their pools drop it first instead of racing the
   * close.
   */
  keepAliveHint: string;
}

export function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? "Unknown";
}
