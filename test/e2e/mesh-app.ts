// The application of the end-to-end test, run in real pods beside real Trellis sidecars. One
// program, two roles (MESH_APP_ROLE):
//
//   server  answers every request on PORT, HTTP/1.1 and HTTP/2 (prior knowledge) on the same
//           port, with {pod, clientId}: clientId is the peer identity its inbound proxy verified
//           (the trellis-client-id header). On SIGTERM it keeps serving for DRAIN_MS, as a real
//           service does while the endpoint removal spreads, then exits.
//   client  sends a steady stream of requests to TARGET (an authority such as
//           server.demo.svc.cluster.local:8080) through its own outbound proxy on 127.0.0.1:4140,
//           over HTTP/1.1 and HTTP/2 at RATE requests per second each, and counts every one.
//           GET /stats on STATS_PORT returns the counters and hands over (drains) the samples
//           gathered since the last call: [unix ms, latency ms, ok (1/0), protocol]. On SIGTERM
//           it stops sending, waits for requests in flight, and serves /stats for DRAIN_MS more
//           so the test collects its last numbers.
//
// The test reaches /stats on the pod's IP (a network namespace the harness made), never through
// a Service address. Bundled with esbuild into the test image; only node's built-ins.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import http2 from "node:http2";
import net from "node:net";

const env = process.env;
const pod = env.HOSTNAME ?? "unknown";
const drainMs = Number(env.DRAIN_MS ?? 5000);

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), pod, msg, ...fields })}\n`);
}

function runServer(): void {
  const port = Number(env.PORT ?? 8080);
  const answer = (clientId: unknown) => JSON.stringify({ pod, clientId: clientId ?? null });
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(answer(req.headers["trellis-client-id"]));
    });
  });
  const h2 = http2.createServer();
  h2.on("stream", (stream, headers) => {
    stream.resume();
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(answer(headers["trellis-client-id"]));
    });
    stream.on("error", () => {});
  });
  const preface = Buffer.from("PRI * HTTP/2.0\r\n");
  const server = net.createServer((socket) => {
    socket.once("readable", () => {
      const head: Buffer | null = socket.read(Math.min(preface.length, socket.readableLength));
      if (head === null) return socket.destroy();
      socket.unshift(head);
      (head.equals(preface.subarray(0, head.length)) ? h2 : h1).emit("connection", socket);
    });
    socket.on("error", () => {});
  });
  server.listen(port, "0.0.0.0", () => log("server listening", { port }));
  process.once("SIGTERM", () => {
    log("SIGTERM: serving on while the endpoint removal spreads", { drainMs });
    setTimeout(() => {
      server.close();
      h1.closeAllConnections();
      process.exit(0);
    }, drainMs).unref();
  });
}

type Sample = [number, number, number, string];

function runClient(): void {
  const target = env.TARGET ?? "server:8080";
  const proxyPort = Number(env.PROXY_PORT ?? 4140);
  const rate = Number(env.RATE ?? 20);
  const protocols = (env.PROTOCOLS ?? "h1,h2").split(",").filter(Boolean);
  const timeoutMs = Number(env.REQUEST_TIMEOUT_MS ?? 5000);
  const counters = { sent: 0, ok: 0, failed: 0, inFlight: 0 };
  const servers: Record<string, number> = {};
  const clientIds: Record<string, number> = {};
  const errors: string[] = [];
  let samples: Sample[] = [];
  let sending = true;
  let done = false;

  const finish = (started: number, proto: string, ok: boolean, detail: string, body?: string) => {
    counters.inFlight--;
    const ms = performance.now() - started;
    samples.push([Date.now(), Math.round(ms * 1000) / 1000, ok ? 1 : 0, proto]);
    if (ok) {
      counters.ok++;
      try {
        const answer = JSON.parse(body ?? "{}") as { pod?: string; clientId?: string | null };
        servers[answer.pod ?? "?"] = (servers[answer.pod ?? "?"] ?? 0) + 1;
        const id = answer.clientId ?? "none";
        clientIds[id] = (clientIds[id] ?? 0) + 1;
      } catch {}
    } else {
      counters.failed++;
      errors.push(`${new Date().toISOString()} ${proto} ${detail}`);
      if (errors.length > 50) errors.shift();
    }
  };

  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const sendH1 = () => {
    const started = performance.now();
    counters.sent++;
    counters.inFlight++;
    let settled = false;
    const settle = (ok: boolean, detail: string, body?: string) => {
      if (settled) return;
      settled = true;
      finish(started, "h1", ok, detail, body);
    };
    const req = http.request(
      {
        host: "127.0.0.1",
        port: proxyPort,
        path: "/echo",
        agent,
        headers: { host: target },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString();
          settle(res.statusCode === 200, `status ${res.statusCode} ${body.slice(0, 200)}`, body);
        });
        res.on("error", (err) => settle(false, `response: ${err.message}`));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => settle(false, `request: ${err.message}`));
    req.end();
  };

  let session: http2.ClientHttp2Session | undefined;
  const h2Session = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(`http://127.0.0.1:${proxyPort}`);
    s.on("error", () => {});
    s.on("close", () => {
      if (session === s) session = undefined;
    });
    session = s;
    return s;
  };
  const sendH2 = () => {
    const started = performance.now();
    counters.sent++;
    counters.inFlight++;
    let settled = false;
    const settle = (ok: boolean, detail: string, body?: string) => {
      if (settled) return;
      settled = true;
      finish(started, "h2", ok, detail, body);
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = h2Session().request({ ":authority": target, ":path": "/echo", ":method": "GET" });
    } catch (err) {
      settle(false, `request: ${(err as Error).message}`);
      return;
    }
    let status = 0;
    const chunks: Buffer[] = [];
    stream.setTimeout(timeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      settle(status === 200, `status ${status} ${body.slice(0, 200)}`, body);
    });
    stream.on("close", () => settle(false, `stream closed (code ${stream.rstCode}) before the end`));
    stream.on("error", (err) => settle(false, `stream: ${err.message}`));
    stream.end();
  };

  const senders: Record<string, () => void> = { h1: sendH1, h2: sendH2 };
  const timers = protocols.map((p) => {
    const send = senders[p];
    if (!send) throw new Error(`unknown protocol ${p}`);
    return setInterval(() => {
      if (sending) send();
    }, 1000 / rate);
  });

  const stats = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== "/stats") {
      res.writeHead(404).end();
      return;
    }
    const out = { pod, done, ...counters, servers, clientIds, errors, samples };
    samples = [];
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(out));
  });
  stats.listen(Number(env.STATS_PORT ?? 9000), "0.0.0.0", () =>
    log("client sending", { target, rate, protocols }),
  );

  process.once("SIGTERM", () => {
    sending = false;
    for (const t of timers) clearInterval(t);
    log("SIGTERM: stopped sending; waiting for requests in flight");
    const waitStarted = Date.now();
    const wait = setInterval(() => {
      if (counters.inFlight > 0 && Date.now() - waitStarted < timeoutMs + 1000) return;
      clearInterval(wait);
      done = true;
      session?.close();
      log("client done", { ...counters });
      setTimeout(() => process.exit(0), drainMs).unref();
    }, 50);
  });
}

if (env.MESH_APP_ROLE === "client") runClient();
else if (env.MESH_APP_ROLE === "server") runServer();
else {
  process.stderr.write("MESH_APP_ROLE must be client or server\n");
  process.exit(2);
}
