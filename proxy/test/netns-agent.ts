/**
 * Test helper process, run inside a network namespace of a capture test
 * (`ip netns exec <ns> node --import tsx proxy/test/netns-agent.ts <control.sock> [options]`),
 * playing the applications of one pod — which know nothing of the mesh — and acting for the
 * test inside that namespace:
 *
 *   --http <port>         an HTTP/1.1 + h2c server on [::]:<port> (IPv4 too) answering JSON
 *                         {port, clientId, host, remote} (what reached the application)
 *   --loopback-http <p>   the same, bound to 127.0.0.1 only
 *   --greet <port>        a server-first TCP server: "+HELLO <port>\r\n", then echoes upper-cased
 *   --relay <p>=<sock>    127.0.0.1:<p> → the Unix socket <sock> (reaching the test's control plane)
 *
 * Commands arrive as HTTP on the Unix socket <control.sock> (a file, so it crosses namespaces):
 * POST /fetch {url, h2?, headers?} and POST /tcp {host, port, send?, expect, timeoutMs}.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    http: { type: "string", multiple: true, default: [] },
    "loopback-http": { type: "string", multiple: true, default: [] },
    greet: { type: "string", multiple: true, default: [] },
    relay: { type: "string", multiple: true, default: [] },
  },
});
const controlPath = positionals[0];
if (!controlPath) throw new Error("usage: netns-agent.ts <control.sock> [options]");

function appAnswer(port: number, headers: http.IncomingHttpHeaders, remote: string | undefined): string {
  return JSON.stringify({
    port,
    clientId: headers["trellis-client-id"] ?? null,
    host: headers.host ?? headers[":authority"] ?? null,
    remote: remote?.replace(/^::ffff:(?=\d)/, "") ?? null,
  });
}

/** One port speaking HTTP/1.1 and h2c (prior knowledge), as ordinary applications do. */
function serveHttp(port: number, host: string): void {
  const h2 = http2.createServer();
  h2.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    stream.respond({ ":status": 200, "content-type": "application/json" });
    stream.end(appAnswer(port, headers, stream.session?.socket.remoteAddress));
  });
  const h1 = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(appAnswer(port, req.headers, req.socket.remoteAddress));
    });
  });
  const preface = "PRI * HTTP/2.0";
  net
    .createServer((socket) => {
      socket.once("readable", () => {
        const head: Buffer | null = socket.read();
        if (!head) return socket.destroy();
        socket.unshift(head);
        if (head.toString("latin1").startsWith(preface)) h2.emit("connection", socket);
        else h1.emit("connection", socket);
      });
    })
    .listen(port, host);
}

function serveGreeting(port: number): void {
  net
    .createServer((socket) => {
      socket.on("error", () => {});
      socket.write(`+HELLO ${port}\r\n`);
      socket.on("data", (d: Buffer) => socket.write(d.toString("latin1").toUpperCase()));
    })
    .listen(port, "0.0.0.0");
}

function relay(spec: string): void {
  const [port, path] = spec.split("=");
  net
    .createServer((client) => {
      const upstream = net.connect(path!);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.pipe(upstream).pipe(client);
    })
    .listen(Number(port), "127.0.0.1");
}

interface FetchCommand {
  url: string;
  h2?: boolean;
  headers?: Record<string, string>;
}

/** Whatever happens, an answer within 20 s: a test waiting on this agent never hangs. */
function fetchH1(c: FetchCommand): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let status: number | undefined;
    let body = "";
    const timer = setTimeout(() => {
      req.destroy();
      resolve({ error: "no complete answer in 20 s", status, body });
    }, 20_000);
    const req = http.get(c.url, { headers: c.headers, agent: false }, (res) => {
      status = res.statusCode;
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body });
      });
    });
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function fetchH2(c: FetchCommand): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const url = new URL(c.url);
    const session = http2.connect(url.origin);
    session.on("error", reject);
    const stream = session.request({ ":path": url.pathname, ...c.headers });
    let body = "";
    let status = 0;
    let headers: http2.IncomingHttpHeaders = {};
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      headers = h;
    });
    stream.on("data", (d: string) => {
      body += d;
    });
    stream.on("end", () => {
      session.close();
      resolve({ status, headers, body });
    });
    stream.on("error", reject);
  });
}

interface TcpCommand {
  host: string;
  port: number;
  /** Written after the first bytes arrive (or at once when `first` is "client"). */
  send?: string;
  first?: "server" | "client";
  /** Read until the received text contains it. */
  expect: string;
  timeoutMs: number;
  /** Mutual TLS as a peer proxy would, with the transport header (raw bytes, hex). */
  tls?: { certFile: string; keyFile: string; caFile: string; alpn: string[]; headerHex?: string };
}

function tcp(c: TcpCommand): Promise<unknown> {
  return new Promise((resolve) => {
    const started = Date.now();
    let got = "";
    const socket = c.tls
      ? tls.connect({
          host: c.host,
          port: c.port,
          cert: readFileSync(c.tls.certFile),
          key: readFileSync(c.tls.keyFile),
          ca: readFileSync(c.tls.caFile),
          ALPNProtocols: c.tls.alpn,
          checkServerIdentity: () => undefined,
        })
      : net.connect(c.port, c.host);
    const done = (r: object) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...r, received: got, ms: Date.now() - started });
    };
    const timer = setTimeout(() => done({ error: "timed out" }), c.timeoutMs);
    socket.once(c.tls ? "secureConnect" : "connect", () => {
      if (c.tls?.headerHex) socket.write(Buffer.from(c.tls.headerHex, "hex"));
      if (c.first === "client" && c.send) socket.write(c.send);
    });
    let sent = c.first === "client";
    socket.on("data", (d: Buffer) => {
      got += d.toString("latin1");
      if (!sent && c.send) {
        sent = true;
        socket.write(c.send);
      }
      if (got.includes(c.expect)) done({ ok: true });
    });
    socket.on("error", (err) => done({ error: err.message }));
    socket.on("close", () => done({ error: "closed" }));
  });
}

for (const p of values.http ?? []) serveHttp(Number(p), "::");
for (const p of values["loopback-http"] ?? []) serveHttp(Number(p), "127.0.0.1");
for (const p of values.greet ?? []) serveGreeting(Number(p));
for (const r of values.relay ?? []) relay(r);

const control = http.createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (d: string) => {
    body += d;
  });
  req.on("end", () => {
    const command = JSON.parse(body || "{}");
    const run =
      req.url === "/fetch"
        ? (command as FetchCommand).h2
          ? fetchH2(command)
          : fetchH1(command)
        : req.url === "/tcp"
          ? tcp(command)
          : Promise.resolve({ ready: true });
    run.then(
      (r) => res.end(JSON.stringify(r)),
      (err: Error) => res.end(JSON.stringify({ error: err.message })),
    );
  });
});
control.listen(controlPath, () => process.stdout.write("agent ready\n"));
