/**
 * TLS session resumption bounded by the certificates it was made with (issue 23, finding 4):
 * a resumed session skips certificate checks on both sides, so an expired certificate must not
 * get a connection through a ticket from before its expiry.
 *
 * - inbound: a client (not a proxy: one that keeps and offers its ticket) with a 3 s client
 *   certificate resumes to a real inbound proxy after its certificate expired — over ALPN
 *   http/1.1 and h2 — and is refused and counted;
 * - outbound: a real outbound proxy whose peer is a TLS server with a 4 s certificate does not
 *   resume to it once that certificate has expired (the full handshake then fails).
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { generateKeyPair, privateKeyToPem } from "../../pki/index.ts";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { issueFor } from "./mesh-pki.ts";
import { metricValue, type ProxyProcess, spawnProxy, waitFor } from "./proxy-process.ts";
import { type App, h1Request, startReplyingApp } from "./test-apps.ts";

const td = "spiffe://cluster.local/ns/default/sa";

/** One connection to the inbound proxy: what it answered, and whether the session was resumed. */
function exchange(
  port: number,
  o: { key: string; cert: string; ca: string; alpn: string; session?: Buffer },
): Promise<{ answered: string; reused: boolean; ticket: Buffer | undefined }> {
  return new Promise((resolve) => {
    let answered = "";
    let ticket: Buffer | undefined;
    let reused = false;
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      key: o.key,
      cert: o.cert,
      ca: o.ca,
      ALPNProtocols: [o.alpn],
      session: o.session,
      checkServerIdentity: () => undefined,
    });
    socket.on("session", (t: Buffer) => {
      ticket = t;
    });
    socket.on("secureConnect", () => {
      reused = socket.isSessionReused();
      // HTTP/1.1: a request; h2: the server's SETTINGS frame arrives unasked.
      if (o.alpn === "http/1.1") socket.write("GET / HTTP/1.1\r\nhost: app\r\n\r\n");
    });
    socket.on("data", (d: Buffer) => {
      answered += d.toString("latin1");
      if (o.alpn === "h2" || answered.includes("\r\n\r\n")) setTimeout(() => socket.end(), 50);
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve({ answered, reused, ticket }));
    setTimeout(() => socket.destroy(), 3_000);
  });
}

describe("TLS session resumption bounded by certificate validity", () => {
  let mesh: MeshFixture;
  let app: App;
  let server: ProxyProcess;
  let client: ProxyProcess;

  before(async () => {
    mesh = await startMeshFixture("resumption", { client: `${td}/client`, server: `${td}/server` });
    app = await startReplyingApp({ text: "app" });
    server = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${app.port}` },
      identity: mesh.identityConfig("server"),
      admin: { listen: "127.0.0.1:0" },
    });
    client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      identity: mesh.identityConfig("client"),
      destination: { url: mesh.destination.url },
      admin: { listen: "127.0.0.1:0" },
    });
  });

  after(async () => {
    await Promise.all([client?.stop("SIGKILL"), server?.stop("SIGKILL")]);
    await Promise.all([app?.close(), mesh?.close()]);
  });

  for (const alpn of ["http/1.1", "h2"]) {
    it(`inbound (${alpn}): a session resumed after the client certificate expired is refused`, async () => {
      const keys = generateKeyPair();
      const key = privateKeyToPem(keys.privateKey);
      // issueFor backdates notBefore 2 s; the certificate expires 3 s from now.
      const cert = issueFor(mesh.ca, keys.publicKey, { spiffeId: `${td}/client`, lifetimeMs: 3_000 });
      const expiresAt = Date.now() + 3_000;
      const o = { key, cert, ca: mesh.ca.anchor.pem, alpn };
      const full = await exchange(server.ports.inbound!, o);
      assert.equal(full.reused, false);
      assert.ok(full.answered.length > 0, "served while the certificate is valid");
      assert.ok(full.ticket, "the proxy issued a session ticket");
      const resumed = await exchange(server.ports.inbound!, { ...o, session: full.ticket });
      assert.equal(resumed.reused, true, "resumption works while the certificate is valid");
      assert.ok(resumed.answered.length > 0);

      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt + 1_200 - Date.now())));
      const late = await exchange(server.ports.inbound!, { ...o, session: resumed.ticket ?? full.ticket });
      assert.equal(late.reused, true, "the client did resume at the TLS level");
      assert.equal(
        late.answered,
        "",
        `served with an expired certificate: ${JSON.stringify(late.answered.slice(0, 40))}`,
      );
      const metrics = (await server.admin("/metrics")).body;
      assert.ok(
        metricValue(metrics, "tls_expired_certificate_total", {
          direction: "inbound",
          certificate: "peer",
        }) >= 1,
      );
    });
  }

  it("outbound: does not resume to a peer whose certificate has expired since", async () => {
    const keys = generateKeyPair();
    const cert = issueFor(mesh.ca, keys.publicKey, {
      spiffeId: `${td}/server`,
      ipAddresses: ["127.0.0.1"],
      lifetimeMs: 4_000,
    });
    const expiresAt = Date.now() + 4_000;
    const resumedAt: boolean[] = [];
    // A peer that answers one HTTP/1.1 request per connection, so every request connects anew.
    const peer = tls.createServer(
      {
        key: privateKeyToPem(keys.privateKey),
        cert,
        ca: mesh.ca.anchor.pem,
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ["http/1.1"],
      },
      (socket) => {
        resumedAt.push(socket.isSessionReused());
        socket.once("data", () =>
          socket.end("HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npeer"),
        );
        socket.on("error", () => {});
      },
    );
    await new Promise<void>((r) => peer.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (peer.address() as AddressInfo).port;
      mesh.destination.set("peer.svc:80", {
        endpoints: [{ address: "127.0.0.1", port, identity: `${td}/server` }],
      });
      const get = () => h1Request(client.ports.outbound!, { host: "peer.svc:80" });
      assert.equal((await get()).status, 200);
      await waitFor(async () => (await get()).status === 200 && resumedAt.at(-1) === true, 3_000);

      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt + 1_200 - Date.now())));
      const seen = resumedAt.length;
      const late = await get();
      assert.notEqual(late.status, 200, "served through a session made with a certificate that has expired");
      assert.deepEqual(resumedAt.slice(seen), [], "no connection reached the peer's application");
    } finally {
      await new Promise((r) => peer.close(() => r(undefined)));
    }
  });
});
