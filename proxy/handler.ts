/**
 * The one handler signature every proxy layer shares, and how layers compose.
 *
 * Owns: the request/response shapes that flow through a stack, the error type that layers
 * throw to mean "answer with this status", and `stack()`. Does not own any I/O: servers
 * turn wire requests into `ProxyRequest`s (server-h1.ts, server-h2.ts) and clients turn them
 * back into wire requests (client-h1.ts, client-h2.ts).
 */
import type { Readable } from "node:stream";
import type { Endpoint } from "./balancer.ts";
import type { Cancellation } from "./cancellation.ts";
import type { HostPort } from "./config.ts";
import type { CompiledRoute } from "./routes.ts";
import type { Service } from "./service.ts";

export type HttpVersion = "http/1.1" | "h2";
export type Direction = "inbound" | "outbound";
/** How the connection the request arrived on was secured. */
export type TlsStatus = "mtls" | "plaintext";

/** Header map with lower-case names, no pseudo-headers and no hop-by-hop headers. */
export type Headers = Record<string, string | string[] | undefined>;

export type RequestBody =
  | { kind: "empty" }
  | { kind: "buffered"; data: Buffer }
  | { kind: "stream"; stream: Readable; length: number | undefined };

/** Facts about the accepted connection, fixed for its lifetime. */
export interface ConnectionContext {
  direction: Direction;
  tls: TlsStatus;
  /** SPIFFE ID of the peer proxy, verified against the trust bundle; undefined for plaintext. */
  peerIdentity: string | undefined;
  clientAddress: string;
  /**
   * Outbound with capture: where the application's connection was going (SO_ORIGINAL_DST);
   * requests go there, to its Service's endpoints or to that pod. Undefined: explicit use,
   * routed by `Host`.
   */
  originalDestination?: HostPort;
  /** Inbound: the application address this connection's requests go to (inbound-target.ts). */
  target?: HostPort;
}

export interface ProxyRequest {
  method: string;
  scheme: string;
  authority: string;
  /** Path and query, as sent by the client. */
  path: string;
  headers: Headers;
  body: RequestBody;
  version: HttpVersion;
  conn: ConnectionContext;
  /** Cancelled when the downstream client goes away; clients cancel upstream work on it. */
  signal: Cancellation;
  /** performance.now() when the request headers were read. */
  startedAt: number;
  /** Annotations set by layers on the way down; read by layers on the way back up. */
  service?: Service;
  route?: CompiledRoute;
  endpoint?: Endpoint;
  /** Identity of the upstream peer the final attempt went to (outbound), for metrics. */
  upstreamIdentity?: string;
  /** Endpoint keys the balancer should avoid (set by the retry layer after a failed attempt). */
  avoid?: Set<string>;
}

export interface ProxyResponse {
  status: number;
  headers: Headers;
  /**
   * null when the response has no body (HEAD, 204, trailers-only gRPC); a Buffer when the
   * whole body arrived with the head (most small responses), which saves a stream per request.
   */
  body: Readable | Buffer | null;
  /** Trailers, available once `body` has ended. */
  trailers: () => Headers | undefined;
}

export type Handler = (req: ProxyRequest) => Promise<ProxyResponse>;
export type Layer = (next: Handler) => Handler;

/** Why the proxy itself answered instead of the upstream; becomes a status and a header. */
export type ProxyErrorReason =
  | "NoEndpoints"
  | "DiscoveryUnavailable"
  | "ConnectFailed"
  | "UpstreamReset"
  | "Timeout"
  | "Forbidden"
  | "NoIdentity"
  | "BadRequest";

const statusByReason: Record<ProxyErrorReason, number> = {
  NoEndpoints: 503,
  DiscoveryUnavailable: 503,
  ConnectFailed: 502,
  UpstreamReset: 502,
  Timeout: 504,
  Forbidden: 403,
  NoIdentity: 503,
  BadRequest: 400,
};

export class ProxyError extends Error {
  readonly status: number;
  constructor(
    readonly reason: ProxyErrorReason,
    message: string,
    /** True when no byte of the request reached the upstream, so any request may be retried. */
    readonly beforeSend = false,
  ) {
    super(message);
    this.status = statusByReason[reason];
  }
}

/** Composes layers outermost-first around a terminal handler. */
export function stack(layers: readonly Layer[], terminal: Handler): Handler {
  let handler = terminal;
  for (let i = layers.length - 1; i >= 0; i--) handler = layers[i]!(handler);
  return handler;
}
