// Real mutual-TLS handshakes on 127.0.0.1 through node:tls (OpenSSL), with certificates from pki:
// leaf + issuer chains, a bundle of two anchors (old and new, as during a rotation), and the
// failures a person would see when an anchor is missing or a SAN is wrong.

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { connect, createServer, type TLSSocket } from "node:tls";
import { generateKeyPair, type IssuedCertificate, issueLeaf, privateKeyToPem, spiffeIdFor } from "./index.ts";
import { type Authority, DAY, fromNow, issuer, trustAnchor } from "./testing/hierarchy.ts";

const oldRoot = trustAnchor("Trellis Root 2025");
const newRoot = trustAnchor("Trellis Root 2026");
const stranger = trustAnchor("Someone Else's Root");
const oldIssuer = issuer("Trellis Issuer 2025", oldRoot);
const newIssuer = issuer("Trellis Issuer 2026", newRoot);
const strangerIssuer = issuer("Someone Else's Issuer", stranger);
const bundle = oldRoot.certificate.pem + newRoot.certificate.pem;

interface Identity {
  key: string;
  cert: string;
}

function identity(
  signer: Authority,
  names: { spiffeId?: string; dnsNames?: string[]; ipAddresses?: string[] },
): Identity {
  const keys = generateKeyPair();
  const leaf: IssuedCertificate = issueLeaf({
    publicKey: keys.publicKey,
    signer: signer.signer,
    notAfter: fromNow(DAY),
    ...names,
  });
  return { key: privateKeyToPem(keys.privateKey), cert: leaf.pem + signer.certificate.pem };
}

const serverId = spiffeIdFor("cluster.local", "trellis", "identity");
const clientId = spiffeIdFor("cluster.local", "shop", "checkout");
const server = identity(newIssuer, {
  spiffeId: serverId,
  dnsNames: ["localhost"],
  ipAddresses: ["127.0.0.1"],
});
const client = identity(oldIssuer, { spiffeId: clientId });

interface Outcome {
  /** The server completed the handshake and authorised the client (`secureConnection` fired). */
  serverAccepted: boolean;
  /** The client's SAN as the server saw it, echoed back over the connection. */
  serverSaw?: string;
  /** Why the client gave up, when it did (its own verification of the server, or the server closing). */
  clientError?: string;
}

function startServer(o: { server: Identity; serverCa: string }, outcome: Outcome) {
  const tlsServer = createServer({
    key: o.server.key,
    cert: o.server.cert,
    ca: o.serverCa,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  tlsServer.on("secureConnection", (socket: TLSSocket) => {
    outcome.serverAccepted = true;
    socket.end(socket.getPeerCertificate().subjectaltname ?? "");
  });
  tlsServer.on("tlsClientError", () => {});
  return tlsServer;
}

function runClient(port: number, o: { client: Identity; clientCa: string }, outcome: Outcome): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({
      host: "127.0.0.1",
      port,
      key: o.client.key,
      cert: o.client.cert,
      ca: o.clientCa,
    });
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      data += chunk;
    });
    socket.on("close", () => {
      if (data) outcome.serverSaw = data;
      else outcome.clientError ??= "closed by the server";
      resolve();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      outcome.clientError = error.code ?? error.message;
    });
    socket.setTimeout(5000, () => socket.destroy(new Error("handshake timed out")));
  });
}

/** Connects a client to a fresh server and reports who accepted whom. */
async function handshake(o: {
  server: Identity;
  serverCa: string;
  client: Identity;
  clientCa: string;
}): Promise<Outcome> {
  const outcome: Outcome = { serverAccepted: false };
  const tlsServer = startServer(o, outcome);
  await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
  try {
    await runClient((tlsServer.address() as AddressInfo).port, o, outcome);
    return outcome;
  } finally {
    tlsServer.close();
  }
}

describe("mTLS over node:tls with pki certificates", () => {
  test("client chained to the old anchor, server to the new one, both trusting the two-anchor bundle", async () => {
    const result = await handshake({ server, serverCa: bundle, client, clientCa: bundle });
    assert.deepEqual(result, { serverAccepted: true, serverSaw: `URI:${clientId}` });
  });

  test("the client refuses a server when it trusts only an unrelated anchor", async () => {
    const result = await handshake({ server, serverCa: bundle, client, clientCa: stranger.certificate.pem });
    assert.deepEqual(result, { serverAccepted: false, clientError: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" });
  });

  test("the server refuses a client when it trusts only an unrelated anchor", async () => {
    const result = await handshake({ server, serverCa: stranger.certificate.pem, client, clientCa: bundle });
    assert.equal(result.serverAccepted, false);
    assert.equal(result.serverSaw, undefined);
  });

  test("the server refuses a client certificate from an unrelated hierarchy", async () => {
    const outsider = identity(strangerIssuer, { spiffeId: clientId });
    const result = await handshake({ server, serverCa: bundle, client: outsider, clientCa: bundle });
    assert.equal(result.serverAccepted, false);
    assert.equal(result.serverSaw, undefined);
  });

  test("the client refuses a server certificate without the 127.0.0.1 IP SAN", async () => {
    const dnsOnly = identity(newIssuer, { dnsNames: ["localhost"] });
    const result = await handshake({ server: dnsOnly, serverCa: bundle, client, clientCa: bundle });
    assert.equal(result.clientError, "ERR_TLS_CERT_ALTNAME_INVALID");
    assert.equal(result.serverSaw, undefined);
  });
});
