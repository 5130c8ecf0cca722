/**
 * Hostile and broken input against a real proxy process: malformed requests, oversized
 * headers, slow clients, idle connections, connection floods and broken HTTP/2 — each is
 * answered or closed, the proxy keeps serving, and nothing reaches the process-level error
 * handler. Also: graceful drain on SIGTERM and configuration errors exit non-zero.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import {
  metricValue,
  type ProxyProcess,
  runProxyExpectingExit,
  spawnProxy,
  waitFor,
} from "./proxy-process.ts";
import { rawExchange } from "./raw-peers.ts";
import { type App, h1Request, startReplyingApp } from "./test-apps.ts";

/** Writes raw bytes and collects what comes back until the proxy closes (or `waitMs`). */
const raw = (port: number, data: string | Buffer, waitMs = 3_000) => rawExchange(port, data, { waitMs });

describe("limits and bad input", () => {
  let app: App;
  let proxy: ProxyProcess;
  let appHost: string;

  before(async () => {
    app = await startReplyingApp({ text: "app", delayMs: 0 });
    appHost = `127.0.0.1:${app.port}`;
    proxy = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: appHost, allowPlaintext: true },
      outbound: { listen: "127.0.0.1:0" },
      admin: { listen: "127.0.0.1:0" },
      limits: {
        maxConnections: 20,
        maxHeaderBytes: 4096,
        headerTimeoutMs: 400,
        idleTimeoutMs: 1_000,
        detectTimeoutMs: 300,
        maxServices: 50,
      },
    });
  });

  after(async () => {
    await proxy?.stop("SIGKILL");
    await app?.close();
  });

  const stillServes = async () => {
    const res = await h1Request(proxy.ports.outbound!, { host: appHost, path: "/ping" });
    assert.equal(res.status, 200);
  };

  it("answers a malformed request with 400 and keeps serving", async () => {
    const r = await raw(proxy.ports.outbound!, "GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n");
    assert.match(r.text, /^HTTP\/1\.1 400/);
    assert.ok(r.closed);
    const r2 = await raw(proxy.ports.outbound!, "GET /\x00\x01 HTTP/9.9\r\n\r\n");
    assert.match(r2.text, /^HTTP\/1\.1 400/);
    await stillServes();
  });

  it("answers oversized headers with 431", async () => {
    const big = `GET / HTTP/1.1\r\nHost: ${appHost}\r\nx-big: ${"a".repeat(8192)}\r\n\r\n`;
    const r = await raw(proxy.ports.outbound!, big);
    assert.match(r.text, /^HTTP\/1\.1 431/);
    await stillServes();
  });

  it("answers an HTTP/2 request with oversized headers with 431, also before the client acknowledged SETTINGS", async () => {
    const hits = app.hits;
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.inbound}`);
    session.on("error", () => {});
    try {
      // Sent with the connection preface, before the proxy's SETTINGS can have been acknowledged.
      const status = await new Promise<unknown>((resolve) => {
        const s = session.request({ ":path": "/", ":authority": appHost, "x-big": "a".repeat(8192) });
        s.on("response", (h) => resolve(h[":status"]));
        s.on("error", (err) => resolve(err.message));
        s.end();
      });
      assert.equal(status, 431);
    } finally {
      session.close();
    }
    assert.equal(app.hits, hits, "the oversized request reached the application");
  });

  it("closes a client that sends its headers too slowly", async () => {
    const r = await new Promise<{ closed: boolean; ms: number }>((resolve) => {
      const started = Date.now();
      const s = net.connect(proxy.ports.outbound!, "127.0.0.1", () => s.write("GET / HTTP/1.1\r\n"));
      s.on("error", () => {});
      const drip = setInterval(() => s.write("x-drip: 1\r\n"), 100);
      const give = setTimeout(() => s.destroy(), 5_000);
      s.on("close", () => {
        clearInterval(drip);
        clearTimeout(give);
        resolve({ closed: Date.now() - started < 5_000, ms: Date.now() - started });
      });
    });
    assert.ok(r.closed, "slow client was not closed");
    assert.ok(r.ms < 3_000, `closed after ${r.ms} ms`);
    const m = (await proxy.admin("/metrics")).body;
    assert.ok(metricValue(m, "http_protocol_errors_total", { reason: "header_timeout" }) >= 1);
  });

  it("closes silent and idle connections", async () => {
    // Outbound, nothing sent: detection times out, and non-HTTP has nowhere to go.
    const silent = await raw(proxy.ports.outbound!, Buffer.alloc(0), 3_000);
    assert.ok(silent.closed && silent.ms < 2_500, `silent connection closed after ${silent.ms} ms`);
    // Inbound, bytes that are not HTTP on a port not declared opaque: 400, closed at once.
    const opaque = await raw(proxy.ports.inbound!, "\x05hello", 6_000);
    assert.ok(opaque.closed && opaque.ms < 4_000, `non-HTTP connection closed after ${opaque.ms} ms`);
    assert.match(opaque.text, /^HTTP\/1\.1 400/);
  });

  it("refuses connections past the limit and recovers", async () => {
    const sockets: net.Socket[] = [];
    const closed = { n: 0 };
    await Promise.all(
      Array.from(
        { length: 60 },
        () =>
          new Promise<void>((resolve) => {
            const s = net.connect(proxy.ports.outbound!, "127.0.0.1", () => {
              s.write("GET /");
              resolve();
            });
            s.on("error", () => resolve());
            s.on("close", () => {
              closed.n++;
              resolve();
            });
            sockets.push(s);
          }),
      ),
    );
    await waitFor(() => closed.n >= 40, 5_000).catch(() => {});
    assert.ok(closed.n >= 40, `only ${closed.n} of 60 were refused`);
    for (const s of sockets) s.destroy();
    await new Promise((r) => setTimeout(r, 150));
    const m = (await proxy.admin("/metrics")).body;
    assert.ok(metricValue(m, "tcp_rejected_total", { reason: "connection_limit" }) >= 40);
    await stillServes();
  });

  it("survives broken HTTP/2 and a flood of distinct authorities without unbounded state", async () => {
    const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const junkFrame = Buffer.from([0, 0, 8, 0xff, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8]);
    const r = await raw(
      proxy.ports.outbound!,
      Buffer.concat([Buffer.from(preface), junkFrame, Buffer.alloc(64, 0xff)]),
    );
    assert.ok(r.closed);
    // 300 authorities (closed ports on 127.0.0.1) against maxServices 50.
    for (let i = 0; i < 300; i++) {
      const host = `127.0.0.1:${40_000 + i}`;
      const res = await h1Request(proxy.ports.outbound!, { host, path: "/" }).catch(() => undefined);
      assert.ok(res === undefined || res.status >= 200);
    }
    await stillServes();
    const m = (await proxy.admin("/metrics")).body;
    assert.equal(metricValue(m, "process_errors_total", {}), 0);
  });

  it("counts an HTTP/2 session error once, and a client's reset not at all", async () => {
    const sessionErrors = async () =>
      metricValue((await proxy.admin("/metrics")).body, "http_protocol_errors_total", {
        direction: "outbound",
        reason: "h2_session",
      });
    const before = await sessionErrors();
    const junk = Buffer.concat([
      Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      Buffer.from("000004ff0000000000deadbeef", "hex"),
      Buffer.alloc(64, 0x41),
    ]);
    assert.ok((await raw(proxy.ports.outbound!, junk)).closed);
    await waitFor(async () => (await sessionErrors()) > before, 5_000);
    // A client that ends its connection with a TCP reset, as grpc-go's does.
    let socket: net.Socket | undefined;
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`, {
      createConnection: () => {
        socket = net.connect(proxy.ports.outbound!, "127.0.0.1");
        return socket;
      },
    });
    session.on("error", () => {});
    await new Promise<void>((resolve, reject) => {
      const s = session.request({ ":path": "/ping", ":authority": appHost });
      s.on("error", reject);
      s.resume();
      s.on("end", () => resolve());
      s.end();
    });
    socket!.resetAndDestroy();
    await waitFor(async () => {
      const m = (await proxy.admin("/metrics")).body;
      return metricValue(m, "tcp_open_connections", { direction: "outbound" }) === 0;
    }, 5_000);
    assert.equal(await sessionErrors(), before + 1);
  });

  it("lets in-flight requests finish on SIGTERM, then exits 0", async () => {
    const slow = await startReplyingApp({ text: "slow", delayMs: 600 });
    const p = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      admin: { listen: "127.0.0.1:0" },
      limits: { shutdownGraceMs: 5_000 },
    });
    try {
      const inFlight = h1Request(p.ports.outbound!, { host: `127.0.0.1:${slow.port}`, path: "/" });
      await waitFor(() => slow.hits === 1, 10_000);
      const exited = p.stop("SIGTERM");
      const res = await inFlight;
      assert.equal(res.status, 200);
      assert.match(res.body, /^slow/);
      assert.equal(await exited, 0);
    } finally {
      await p.stop("SIGKILL");
      await slow.close();
    }
  });

  it("exits 2 with every configuration problem listed", async () => {
    const { code, stderr } = await runProxyExpectingExit({
      TRELLIS_PROXY_CONFIG: "",
      TRELLIS_PROXY_OUTBOUND_LISTEN: "nowhere",
      TRELLIS_PROXY_MAX_CONNECTIONS: "-3",
      TRELLIS_PROXY_MEMORY_RELEASE_INTERVAL_MS: "soon",
      TRELLIS_PROXY_DESTINATION_URL: "ftp://x",
    });
    assert.equal(code, 2);
    assert.match(stderr, /outbound\.listen: expected host:port/);
    assert.match(stderr, /limits\.maxConnections: expected a number/);
    assert.match(stderr, /limits\.memoryReleaseIntervalMs: expected a number/);
    assert.match(stderr, /destination\.url: expected http:\/\/host:port/);
  });
});
