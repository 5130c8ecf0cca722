/**
 * The HTTP/1.1 client pool's TLS session resumption: a second connection to the same peer
 * resumes the first one's session (no full handshake), and a new TLS generation (renewed
 * leaf or bundle) never resumes an older one's.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import tls from "node:tls";
import { generateKeyPair, privateKeyToPem } from "../../pki/index.ts";
import { H1Pools } from "../h1-pool.ts";
import { spiffeVerifier } from "../peer-certificate.ts";
import type { ClientTls } from "../upstream.ts";
import { createMeshCa, issueFor, serverCredentials } from "./mesh-pki.ts";

describe("h1 pool: TLS session resumption", () => {
  const ca = createMeshCa("pool");
  const serverId = "spiffe://cluster.local/ns/pool/sa/server";
  let server: tls.Server;
  let port = 0;
  const keys = generateKeyPair();
  const context = tls.createSecureContext({
    key: privateKeyToPem(keys.privateKey),
    cert: issueFor(ca, keys.publicKey, {
      spiffeId: "spiffe://cluster.local/ns/pool/sa/client",
      lifetimeMs: 3_600_000,
    }),
    ca: ca.anchor.pem,
  });
  const clientTls: ClientTls & { generation: number } = {
    generation: 1,
    clientContext: () => context,
    verifierFor: spiffeVerifier,
  };

  before(async () => {
    server = tls.createServer({
      ...serverCredentials(ca, serverId),
      ca: ca.anchor.pem,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["http/1.1"],
    });
    // Session tickets arrive after the handshake: send a byte so the client reads on.
    server.on("secureConnection", (s) => s.write("x"));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const open = async (pools: H1Pools) => {
    const lease = await pools.acquire({ host: "127.0.0.1", port, identity: serverId });
    const socket = lease.socket as tls.TLSSocket;
    await new Promise((r) => socket.once("data", r));
    // TLS 1.3 tickets follow the handshake; give them a moment to arrive before closing.
    await new Promise((r) => setTimeout(r, 100));
    const reused = socket.isSessionReused();
    lease.release(false);
    return reused;
  };

  it("resumes the previous session to the same peer, and not across TLS generations", async () => {
    const pools = new H1Pools(clientTls, { connectTimeoutMs: 2_000, idleTimeoutMs: 10_000 });
    assert.equal(await open(pools), false, "the first connection is a full handshake");
    assert.equal(await open(pools), true, "the second one resumes");
    clientTls.generation = 2;
    assert.equal(await open(pools), false, "a new generation starts afresh");
    assert.equal(await open(pools), true);
    pools.close();
  });
});
