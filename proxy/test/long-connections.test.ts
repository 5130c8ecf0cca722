/**
 * Long-lived connections and the idle timeout, through two real proxy processes.
 *
 * HTTP/2: an application's h2c session into the outbound proxy and the outbound proxy's mTLS
 * h2 session into the inbound proxy each carry a request every 100 ms for several idle
 * timeouts, and neither is closed under its streams. Once idle, they are closed with GOAWAY.
 *
 * The bug this guards: the listener's idle timer sat on the accepted socket, which node:http2
 * reads natively without touching that timer, so every HTTP/2 connection (plain or under TLS)
 * was destroyed one idle timeout (60 s by default) after it was accepted, busy or not, and a
 * request in flight on it failed (seen as one or two lost requests in the real-node e2e test).
 *
 * HTTP/1.1: a keep-alive connection may wait idleTimeoutMs for its next request (announced as
 * `keep-alive: timeout=N`), not the much shorter head deadline, which runs from a head's first
 * byte. A server that closes idle connections early races the client's next request on them.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { metricValue, type ProxyProcess, spawnProxy, waitFor } from "./proxy-process.ts";
import { type App, h2Request, startDualApp } from "./test-apps.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const clientId = `${td}/client`;
const serverId = `${td}/server`;
const web = "web.default.svc.cluster.local:80";
const IDLE_MS = 2_000;
const limits = { idleTimeoutMs: IDLE_MS, headerTimeoutMs: 500, detectTimeoutMs: 500 };

describe("long-lived HTTP/2 connections and the idle timeout", () => {
  let mesh: MeshFixture;
  let app: App;
  let server: ProxyProcess;
  let client: ProxyProcess;

  before(async () => {
    mesh = await startMeshFixture("long", { client: clientId, server: serverId });
    app = await startDualApp(
      (_req, res) => res.end("h1"),
      (stream) => {
        stream.respond({ ":status": 200 });
        stream.end("h2");
      },
    );
    server = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${app.port}`, authorizedIdentities: [clientId] },
      admin: { listen: "127.0.0.1:0" },
      identity: mesh.identityConfig("server"),
      limits,
    });
    mesh.destination.set(web, {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: serverId }],
    });
    client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      admin: { listen: "127.0.0.1:0" },
      identity: mesh.identityConfig("client"),
      destination: { url: mesh.destination.url },
      limits,
    });
  });

  after(async () => {
    await Promise.all([client, server].map((p) => p?.stop("SIGKILL")));
    await Promise.all([app?.close(), mesh?.close()]);
  });

  it("keeps a busy HTTP/2 session open past the idle timeout on both hops, then closes it once idle", async () => {
    const session = http2.connect(`http://127.0.0.1:${client.ports.outbound}`);
    let closedAt: number | undefined;
    session.on("close", () => {
      closedAt = Date.now();
    });
    session.on("error", () => {});
    const failures: string[] = [];
    let ok = 0;
    const busyUntil = Date.now() + 3 * IDLE_MS;
    // When the last response arrived: the session is idle from then, not from the loop's end
    // (a 100 ms pause later), which made a timely close look 100 ms early.
    let idleFrom = Date.now();
    while (Date.now() < busyUntil) {
      try {
        const res = await h2Request(session, { authority: web, path: "/busy", method: "GET" });
        if (res.status === 200 && res.body === "h2") ok++;
        else failures.push(`status ${res.status} ${res.body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      idleFrom = Date.now();
      await sleep(100);
    }
    assert.deepEqual(failures, [], `${ok} ok; ${client.output()}`);
    assert.equal(closedAt, undefined, "the application's session was closed while busy");
    const inboundAccepted = metricValue((await server.admin("/metrics")).body, "tcp_open_total", {
      direction: "inbound",
      tls: "mtls",
      peer_identity: clientId,
    });
    assert.equal(inboundAccepted, 1, "the outbound proxy's mTLS session was closed and reopened while busy");

    // Idle now: the outbound proxy closes the application's session (GOAWAY), not sooner.
    await waitFor(() => closedAt !== undefined, 5 * IDLE_MS);
    const after = (closedAt ?? Number.NaN) - idleFrom;
    assert.ok(after >= IDLE_MS - 100, `closed ${after} ms after the last request`);
  });

  it("keeps an idle HTTP/1.1 keep-alive connection for the idle timeout, not the head deadline", async () => {
    const socket = net.connect(client.ports.outbound!, "127.0.0.1");
    socket.on("error", () => {});
    let received = "";
    let closedAt: number | undefined;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      received += d;
    });
    socket.on("close", () => {
      closedAt = Date.now();
    });
    const exchange = async (n: number) => {
      socket.write(`GET /keep-alive/${n} HTTP/1.1\r\nhost: ${web}\r\n\r\n`);
      await waitFor(() => received.split("HTTP/1.1 ").length > n, 5_000);
    };
    await new Promise((resolve) => socket.once("connect", resolve));
    await exchange(1);
    assert.match(received, /^HTTP\/1\.1 200/);
    assert.match(received, new RegExp(`keep-alive: timeout=${IDLE_MS / 1000}\r\n`, "i"));
    const errorsBefore = metricValue((await client.admin("/metrics")).body, "http_protocol_errors_total", {
      reason: "header_timeout",
    });
    // Idle for more than twice the head deadline (500 ms), less than the idle timeout.
    await sleep(IDLE_MS / 2 + 200);
    assert.equal(closedAt, undefined, "closed at the head deadline while idle");
    await exchange(2);
    assert.equal(received.split("HTTP/1.1 200").length - 1, 2, received);
    const idleFrom = Date.now();
    await waitFor(() => closedAt !== undefined, 3 * IDLE_MS);
    const after = (closedAt ?? Number.NaN) - idleFrom;
    assert.ok(after >= IDLE_MS - 200, `closed ${after} ms after the last response`);
    const errorsAfter = metricValue((await client.admin("/metrics")).body, "http_protocol_errors_total", {
      reason: "header_timeout",
    });
    assert.equal(errorsAfter, errorsBefore, "an idle keep-alive close is not a protocol error");
  });
});
