/**
 * End to end through two real proxy processes: client → outbound proxy → mTLS → inbound
 * proxy → application, for HTTP/1.1, HTTP/2, gRPC-style streaming with trailers and opaque
 * TCP; peer identities in headers, metrics and policy; plaintext refused where not allowed.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { fingerprint } from "../../pki/index.ts";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { createMeshCa, serverCredentials } from "./mesh-pki.ts";
import { metricValue, type ProxyProcess, spawnProxy } from "./proxy-process.ts";
import { type App, h1Request, h2Request, startDualApp } from "./test-apps.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const clientId = `${td}/client`;
const serverId = `${td}/server`;
const intruderId = `${td}/intruder`;
const web = "web.default.svc.cluster.local:80";
const db = "db.default.svc.cluster.local:5432";

describe("mesh: outbound → mTLS → inbound", () => {
  let mesh: MeshFixture;
  let app: App;
  let server: ProxyProcess;
  let client: ProxyProcess;
  let intruder: ProxyProcess;

  before(async () => {
    mesh = await startMeshFixture("mesh", { client: clientId, server: serverId, intruder: intruderId });
    app = await startDualApp(
      (req, res, body) => {
        res.writeHead(200, { "content-type": "text/plain", "x-app": "h1" });
        res.end(`h1 ${req.method} ${req.url} ${body.toString()} client=${req.headers["trellis-client-id"]}`);
      },
      (stream, headers) => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-count": "done" }));
        stream.on("data", (d: Buffer) => stream.write(`echo:${d.toString()};`));
        stream.on("end", () =>
          stream.end(`client=${headers["trellis-client-id"]}${headers["trellis-anything"] ?? ""}`),
        );
      },
    );
    server = await spawnProxy({
      inbound: {
        listen: "127.0.0.1:0",
        app: `127.0.0.1:${app.port}`,
        authorizedIdentities: [clientId],
      },
      admin: { listen: "127.0.0.1:0" },
      identity: mesh.identityConfig("server"),
    });
    const endpoint = { address: "127.0.0.1", port: server.ports.inbound!, identity: serverId };
    mesh.destination.set(web, { endpoints: [endpoint] });
    mesh.destination.set(db, { endpoints: [endpoint] });
    const outbound = (workload: string) => ({
      outbound: { listen: "127.0.0.1:0", opaqueAuthority: db },
      admin: { listen: "127.0.0.1:0" },
      identity: mesh.identityConfig(workload),
      destination: { url: mesh.destination.url },
    });
    client = await spawnProxy(outbound("client"));
    intruder = await spawnProxy(outbound("intruder"));
  });

  after(async () => {
    await Promise.all([client, server, intruder].map((p) => p?.stop("SIGKILL")));
    await Promise.all([app?.close(), mesh?.close()]);
  });

  it("carries HTTP/1.1 with the verified client identity", async () => {
    const res = await h1Request(client.ports.outbound!, {
      host: web,
      path: "/hello?x=1",
      method: "POST",
      body: "abc",
    });
    assert.equal(res.status, 200, `${res.body}\n${client.output()}\n${server.output()}`);
    assert.equal(res.headers["x-app"], "h1");
    assert.equal(res.body, `h1 POST /hello?x=1 abc client=${clientId}`);
  });

  it("carries HTTP/2 and gRPC-style streams with trailers", async () => {
    const session = http2.connect(`http://127.0.0.1:${client.ports.outbound}`);
    try {
      const res = await h2Request(session, {
        authority: web,
        path: "/pkg.Echo/Stream",
        // Headers the proxy owns, forged by the client: stripped, the identity set from mTLS.
        headers: {
          "content-type": "application/grpc",
          te: "trailers",
          "trellis-client-id": "spiffe://forged",
          "trellis-anything": "forged",
        },
        chunks: ["one", "two", "three"],
      });
      assert.equal(res.status, 200);
      assert.equal(res.body, `echo:one;echo:two;echo:three;client=${clientId}`);
      assert.equal(res.trailers?.["grpc-status"], "0");
      assert.equal(res.trailers?.["x-count"], "done");
    } finally {
      session.close();
    }
  });

  it("relays opaque TCP over mTLS", async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(client.ports.outbound!, "127.0.0.1", () => s.write("\x01hello opaque"));
      s.setEncoding("utf8");
      let got = "";
      s.on("data", (d: string) => {
        got += d;
        if (got.includes("OPAQUE")) {
          s.destroy();
          resolve(got);
        }
      });
      s.on("error", reject);
    });
    assert.equal(reply, "\x01HELLO OPAQUE");
  });

  it("records TLS status and peer identity in metrics on both sides", async () => {
    const inbound = (await server.admin("/metrics")).body;
    assert.ok(
      metricValue(inbound, "request_total", { direction: "inbound", tls: "mtls", peer_identity: clientId }) >=
        2,
    );
    assert.ok(
      metricValue(inbound, "tcp_open_total", {
        direction: "inbound",
        tls: "mtls",
        peer_identity: clientId,
      }) >= 1,
    );
    const outbound = (await client.admin("/metrics")).body;
    assert.ok(
      metricValue(outbound, "request_total", {
        authority: web,
        status_class: "2xx",
        peer_identity: serverId,
      }) >= 2,
    );
    assert.match(outbound, /response_latency_ms_bucket\{direction="outbound",authority="web\.default/);
  });

  it("presents its leaf to the destination service, which requires one", () => {
    assert.ok(mesh.destination.clients.has(clientId), [...mesh.destination.clients].join(", "));
  });

  it("reports its identity and the trust anchors it holds", async () => {
    const status = JSON.parse((await client.admin("/identity")).body) as Record<string, unknown>;
    assert.equal(status.spiffeId, clientId);
    assert.deepEqual(status.trustBundleFingerprints, [fingerprint(mesh.ca.anchor.der)]);
    assert.equal(typeof status.leafFingerprint, "string");
    assert.ok(Date.parse(String(status.leafNotAfter)) > Date.now());
  });

  it("applies inbound policy to the verified peer identity", async () => {
    const res = await h1Request(intruder.ports.outbound!, { host: web, path: "/" });
    assert.equal(res.status, 403);
    assert.equal(res.headers["trellis-proxy-error"], "Forbidden");
  });

  it("refuses plaintext and foreign certificates on the inbound port", async () => {
    await assert.rejects(h1Request(server.ports.inbound!, { host: web, path: "/" }));
    const foreign = serverCredentials(createMeshCa("foreign"), clientId);
    const handshake = new Promise<void>((resolve, reject) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port: server.ports.inbound!,
        ...foreign,
        rejectUnauthorized: false,
        ALPNProtocols: ["http/1.1"],
      });
      s.on("secureConnect", () => s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
      s.on("data", () => resolve());
      s.on("error", reject);
      s.on("close", () => reject(new Error("closed")));
    });
    await assert.rejects(handshake);
    const m = (await server.admin("/metrics")).body;
    assert.ok(metricValue(m, "tcp_rejected_total", { reason: "plaintext_not_allowed" }) >= 1);
    assert.ok(metricValue(m, "tls_handshake_failures_total", { direction: "inbound" }) >= 1);
  });
});
