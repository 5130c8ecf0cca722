/**
 * Test fixture: the applications beside and behind the proxies (HTTP/1.1 and HTTP/2 servers
 * with scripted behaviour), and small clients that read whole responses including trailers.
 */
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";

export interface App {
  port: number;
  hits: number;
  close: () => Promise<void>;
}

export async function startH1App(
  handle: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void,
): Promise<App> {
  const app: App = { port: 0, hits: 0, close: async () => {} };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      app.hits++;
      handle(req, res, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  app.port = (server.address() as AddressInfo).port;
  app.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return app;
}

/** An app that answers `text` (or a status) after `delayMs`. */
export function startReplyingApp(o: { text?: string; status?: number; delayMs?: number }): Promise<App> {
  return startH1App((req, res, body) => {
    const reply = () => {
      res.writeHead(o.status ?? 200, { "content-type": "text/plain" });
      res.end(
        `${o.text ?? "ok"} ${req.method} ${req.url} ${body.length} ${req.headers["trellis-client-id"] ?? "-"}`,
      );
    };
    if (o.delayMs) setTimeout(reply, o.delayMs);
    else reply();
  });
}

export async function startH2App(
  handle: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<App> {
  const app: App = { port: 0, hits: 0, close: async () => {} };
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    app.hits++;
    stream.on("error", () => {});
    handle(stream, headers);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  app.port = (server.address() as AddressInfo).port;
  app.close = () =>
    new Promise((r) => {
      for (const s of sessions) s.destroy();
      server.close(() => r());
    });
  return app;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function h1Request(
  port: number,
  o: {
    host: string;
    path?: string;
    method?: string;
    body?: string;
    headers?: http.OutgoingHttpHeaders;
    agent?: http.Agent;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        path: o.path ?? "/",
        method: o.method ?? "GET",
        headers: { host: o.host, ...o.headers },
        agent: o.agent ?? false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/**
 * Sends one stream. With `chunks`, it is a ping-pong: each chunk is written only after the
 * previous one's echo came back, which only works if the path streams both ways.
 */
export function h2Request(
  session: http2.ClientHttp2Session,
  o: {
    authority: string;
    path: string;
    method?: string;
    headers?: http2.OutgoingHttpHeaders;
    chunks?: string[];
  },
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const chunks = o.chunks ?? [];
    const stream = session.request(
      { ":method": o.method ?? "POST", ":path": o.path, ":authority": o.authority, ...o.headers },
      { endStream: chunks.length === 0 },
    );
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let body = "";
    let sent = 0;
    const sendNext = () => {
      if (sent >= chunks.length) return;
      const chunk = chunks[sent++]!;
      if (sent === chunks.length) stream.end(chunk);
      else stream.write(chunk);
    };
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    stream.on("trailers", (t) => {
      trailers = t;
    });
    stream.on("data", (d: string) => {
      body += d;
      sendNext();
    });
    stream.on("end", () => resolve({ status, headers, body, trailers }));
    stream.on("error", reject);
    sendNext();
  });
}

/**
 * One port speaking HTTP/1.1, HTTP/2 (prior knowledge) and, for anything else, an opaque
 * echo that upper-cases what it receives — as an application behind an inbound proxy may.
 */
export async function startDualApp(
  h1: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void,
  h2: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<App> {
  const app: App = { port: 0, hits: 0, close: async () => {} };
  const h1Server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      app.hits++;
      h1(req, res, Buffer.concat(chunks));
    });
  });
  const h2Server = http2.createServer();
  h2Server.on("stream", (stream, headers) => {
    app.hits++;
    stream.on("error", () => {});
    h2(stream, headers);
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.once("data", (first: Buffer) => {
      socket.pause();
      const text = first.toString("latin1");
      if (text.startsWith("PRI * HTTP/2.0")) h2Server.emit("connection", socket);
      else if (/^[A-Z]+ /.test(text)) h1Server.emit("connection", socket);
      else {
        socket.write(first.toString("utf8").toUpperCase());
        socket.on("data", (d: Buffer) => socket.write(d.toString("utf8").toUpperCase()));
        socket.resume();
        return;
      }
      socket.unshift(first);
      socket.resume();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  app.port = (server.address() as AddressInfo).port;
  app.close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return app;
}

/** An application answering 200 "ok" to every HTTP/1.1 and HTTP/2 request. */
export function startOkApp(): Promise<App> {
  return startDualApp(
    (_req, res) => res.end("ok"),
    (stream) => {
      stream.respond({ ":status": 200 });
      stream.end("ok");
    },
  );
}
