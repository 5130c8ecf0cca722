// The HTTP/2 side of the destination service: `GET /v1/watch?authority=<host:port>` (a Service
// name, or an IP:port — a ClusterIP or a pod IP) answered with 404 (not a Service or pod known
// here) or a long-lived 200 `application/x-ndjson` stream fed by the hub.
// Mutual TLS (serving certificate and trust bundle from files, reloaded in place; client proxies
// must present a mesh identity of the trust domain), or plaintext for tests. Every resource is
// bounded: open
// streams, watched authorities, and the bytes buffered for a slow reader (past the limit the
// stream is reset; the proxy reconnects and gets the current state). Owns the listener and
// streams; does not own what a line says (destination-state.ts).
import http2 from "node:http2";
import type { TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { Counter, Gauge } from "../../kube/index.ts";
import { parseAddressAuthority, parseAuthority } from "./authority.ts";
import { checkClientLeaf, classifyHandshakeError } from "./client-identity.ts";
import type { ServingMaterial } from "./serving-tls.ts";
import type { WatchHub } from "./watch-hub.ts";

export interface DestinationServerOptions {
  port: number;
  host: string;
  /** Serving chain, key and the client trust bundle; undefined only with --plaintext. */
  tls: ServingMaterial | undefined;
  trustDomain: string;
  clusterDomain: string;
  maxStreams: number;
  maxBufferedBytes: number;
  hub: WatchHub;
  logger: Logger;
  streams: Gauge;
  requests: Counter;
  /** Client connections by result: Accepted or why it was refused. */
  clients: Counter;
}

export interface DestinationServer {
  port: number;
  /** New connections use `material`; open ones keep theirs, so no stream is dropped. */
  setTls(material: ServingMaterial): void;
  close(): Promise<void>;
}

export async function startDestinationServer(options: DestinationServerOptions): Promise<DestinationServer> {
  const settings: http2.Settings = { maxConcurrentStreams: 1000 };
  const secure = options.tls
    ? http2.createSecureServer({
        ...options.tls,
        // OpenSSL refuses a client without a certificate chaining to the bundle in the handshake.
        requestCert: true,
        rejectUnauthorized: true,
        allowHTTP1: false,
        settings,
      })
    : undefined;
  const server = secure ?? http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  let open = 0;
  secure?.on("tlsClientError", (err: Error, socket: TLSSocket) => {
    const result = classifyHandshakeError(err, socket.authorizationError);
    options.clients.inc({ result });
    options.logger.debug(
      { result, err: err.message, verifyError: String(socket.authorizationError ?? "") },
      "client refused in the TLS handshake",
    );
  });
  server.on("session", (session) => {
    if (secure) {
      // Runs before any stream of the session is read: a refused client never reaches a handler.
      const socket = session.socket as TLSSocket;
      const verdict = checkClientLeaf(socket.getPeerCertificate().raw, options.trustDomain);
      options.clients.inc({ result: verdict.result });
      if (!verdict.ok) {
        options.logger.info({ result: verdict.result, reason: verdict.message }, "client refused");
        session.destroy();
        return;
      }
    }
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream, headers) => {
    const answer = (status: number, result: string) => {
      options.requests.inc({ result });
      stream.respond({ ":status": status, "content-type": "text/plain" });
      stream.end(`${result}\n`);
    };
    const url = new URL(String(headers[":path"] ?? "/"), "http://destination");
    if (headers[":method"] !== "GET" || url.pathname !== "/v1/watch") return answer(404, "NoSuchPath");
    const authority = url.searchParams.get("authority") ?? "";
    const target = parseAuthority(authority, options.clusterDomain);
    const address = target ? undefined : parseAddressAuthority(authority);
    if (!target && !address) return answer(404, "NotAService");
    if (open >= options.maxStreams) return answer(503, "TooManyStreams");
    const subscriber = {
      send: (line: string): boolean => {
        if (stream.destroyed || stream.closed) return false;
        if (stream.writableLength > options.maxBufferedBytes) {
          options.requests.inc({ result: "SlowConsumer" });
          stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
          return false;
        }
        stream.write(line);
        return true;
      },
      end: () => {
        if (!stream.destroyed) stream.end();
      },
    };
    const result = target
      ? options.hub.subscribe(target, subscriber)
      : options.hub.subscribeAddress(address!, subscriber);
    if (!result.ok) return answer(result.reason === "NotFound" ? 404 : 503, result.reason);
    options.requests.inc({ result: "Watching" });
    open++;
    options.streams.set({}, open);
    stream.on("close", () => {
      open--;
      options.streams.set({}, open);
      result.unsubscribe();
    });
    stream.on("error", () => {});
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson", "cache-control": "no-store" });
    stream.write(result.line);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  options.logger.info({ port, tls: Boolean(options.tls) }, "destination serving");
  return {
    port,
    setTls: (material) => secure?.setSecureContext(material),
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.close();
        server.close(() => resolve());
        setTimeout(() => {
          for (const session of sessions) session.destroy();
        }, 1000).unref();
      }),
  };
}
