// The HTTP/2 side of the destination service: `GET /v1/watch?authority=<host:port>` answered
// with 404 (not a Service) or a long-lived 200 `application/x-ndjson` stream fed by the hub.
// TLS with a certificate from files, or plaintext for tests. Every resource is bounded: open
// streams, watched authorities, and the bytes buffered for a slow reader (past the limit the
// stream is reset; the proxy reconnects and gets the current state). Owns the listener and
// streams; does not own what a line says (destination-state.ts).
import http2 from "node:http2";
import type { Logger } from "pino";
import type { Counter, Gauge } from "../../kube/index.ts";
import { parseAuthority } from "./authority.ts";
import type { WatchHub } from "./watch-hub.ts";

export interface DestinationServerOptions {
  port: number;
  host: string;
  tls: { cert: string; key: string } | undefined;
  clusterDomain: string;
  maxStreams: number;
  maxBufferedBytes: number;
  hub: WatchHub;
  logger: Logger;
  streams: Gauge;
  requests: Counter;
}

export interface DestinationServer {
  port: number;
  close(): Promise<void>;
}

export async function startDestinationServer(options: DestinationServerOptions): Promise<DestinationServer> {
  const settings: http2.Settings = { maxConcurrentStreams: 1000 };
  const server = options.tls
    ? http2.createSecureServer({ ...options.tls, allowHTTP1: false, settings, minVersion: "TLSv1.2" })
    : http2.createServer({ settings });
  const sessions = new Set<http2.ServerHttp2Session>();
  let open = 0;
  server.on("session", (session) => {
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
    const target = parseAuthority(url.searchParams.get("authority") ?? "", options.clusterDomain);
    if (!target) return answer(404, "NotAService");
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
    const result = options.hub.subscribe(target, subscriber);
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
