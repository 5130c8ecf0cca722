// The identity endpoint through the real API server: the identity program runs as a process on
// loopback, reads its issuer Secret from a local cluster and authenticates real ServiceAccount
// tokens with TokenReviews. A valid request gets a leaf that verifies (pki and openssl) with
// exactly its ServiceAccount's identity; every kind of bad request is refused with its code and
// counted in /metrics.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import type http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { createCsr, generateKeyPair, parseCertificate, pemBlocks, verifyChain } from "../../pki/index.ts";
import { opensslVerify } from "../../pki/testing/openssl-cli.ts";
import { LocalCluster } from "../../test/cluster/local-cluster.ts";
import { ProcessGroup } from "../../test/cluster/process-group.ts";
import {
  applyIssuerSecret,
  connect,
  DAY_MS,
  type IdentityProcess,
  madeUpJwt,
  metricValue,
  rawCall,
  SERVER_SPIFFE_ID,
  startIdentityProcess,
  type TestIssuer,
  testAnchor,
  testIssuer,
} from "./testing/identity-fixture.ts";

const WEB_ID = "spiffe://cluster.local/ns/shop/sa/web";
const API_ID = "spiffe://cluster.local/ns/shop/sa/api";

function csrFor(spiffeId: string | undefined, dnsNames?: string[]) {
  const keyPair = generateKeyPair();
  return {
    keyPair,
    pem: createCsr({ keyPair, ...(spiffeId ? { spiffeId } : {}), ...(dnsNames ? { dnsNames } : {}) }).pem,
  };
}

describe("identity endpoint against the real API server", { timeout: 120_000 }, () => {
  let cluster: LocalCluster;
  let identity: IdentityProcess;
  let issuer: TestIssuer;
  let session: http2.ClientHttp2Session;
  let webToken: string;
  const group = new ProcessGroup();
  const token = (sa: string, ...extra: string[]) =>
    cluster.kubectl(["create", "token", sa, "-n", "shop", ...extra]).trim();
  const metrics = async () => {
    const res = await fetch(`http://127.0.0.1:${identity.adminPort}/metrics`);
    return res.text();
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0 });
    cluster.kubectl(["create", "namespace", "trellis-system"]);
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["create", "serviceaccount", "web", "-n", "shop"]);
    cluster.kubectl(["create", "serviceaccount", "api", "-n", "shop"]);
    issuer = testIssuer(testAnchor("test root"), "test issuer");
    applyIssuerSecret(cluster, issuer);
    identity = await startIdentityProcess(cluster, group, [
      "--max-body-bytes=4096",
      "--request-timeout=1s",
      "--max-pending-reviews=1",
    ]);
    session = connect(identity.url, issuer.anchor.cert.pem);
    webToken = token("web", "--audience", "identity.trellis.dev");
  });
  after(async () => {
    session?.close();
    await group.stop();
    await cluster?.stop();
  });

  it("signs a CSR for the token's ServiceAccount: chain verifies, exact identity, 24 h", async () => {
    const csr = csrFor(WEB_ID);
    const res = await rawCall(session, { token: webToken, body: csr.pem });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers["content-type"], "application/json");
    const chainPem = String(res.json.certificateChainPem);
    const chain = pemBlocks(chainPem, "CERTIFICATE");
    assert.equal(chain.length, 2, "leaf then issuer, no anchor");
    assert.deepEqual(chain[1], issuer.cert.der);
    const verified = verifyChain(chain, [issuer.anchor.cert.der]);
    assert.ok(verified.ok, JSON.stringify(verified));
    assert.equal(verified.spiffeId, WEB_ID);
    const openssl = opensslVerify({
      leafPem: chainPem.slice(0, chainPem.indexOf("-----END CERTIFICATE-----") + 26),
      untrustedPem: issuer.cert.pem,
      anchorsPem: issuer.anchor.cert.pem,
    });
    assert.ok(openssl.ok, openssl.output);
    const leaf = parseCertificate(chain[0]!);
    assert.equal(leaf.spiffeId, WEB_ID);
    assert.deepEqual(leaf.dnsNames, []);
    assert.deepEqual(leaf.ipAddresses, []);
    assert.equal(leaf.isCa, false);
    assert.ok(leaf.publicKey.equals(csr.keyPair.publicKey), "the leaf certifies the CSR's key");
    const lifetime = leaf.notAfter.getTime() - Date.now();
    assert.ok(Math.abs(lifetime - DAY_MS) < 120_000, `lifetime ${lifetime} ms`);
    assert.equal(res.json.notAfter, `${leaf.notAfter.toISOString().slice(0, 19)}Z`);
    const x509 = new X509Certificate(chain[0]!);
    assert.ok(x509.checkIssued(new X509Certificate(chain[1]!)));
  });

  it("serves a certificate from the same issuer with its SPIFFE ID, DNS name and loopback IP", async () => {
    const peer = await new Promise<X509Certificate>((resolve, reject) => {
      const s = connect(identity.url, issuer.anchor.cert.pem);
      s.once("connect", () => {
        const socket = s.socket as unknown as import("node:tls").TLSSocket;
        const cert = socket.getPeerX509Certificate();
        s.close();
        cert ? resolve(cert) : reject(new Error("no peer certificate"));
      });
      s.once("error", reject);
    });
    assert.match(peer.subjectAltName ?? "", new RegExp(`URI:${SERVER_SPIFFE_ID}`));
    assert.match(peer.subjectAltName ?? "", /DNS:trellis-identity\.trellis-system\.svc/);
    assert.match(peer.subjectAltName ?? "", /IP Address:127\.0\.0\.1/);
    assert.ok(peer.checkIssued(new X509Certificate(issuer.cert.der)));
  });

  it("asks the API server once per token, then answers from the cache", async () => {
    const before = await metrics();
    const fresh = token("api", "--audience", "identity.trellis.dev");
    for (let i = 0; i < 5; i++) {
      const res = await rawCall(session, { token: fresh, body: csrFor(API_ID).pem });
      assert.equal(res.status, 200, res.text);
    }
    const now = await metrics();
    const reviews = (t: string) =>
      metricValue(t, "trellis_identity_token_reviews_total", { result: "authenticated" });
    const hits = (t: string) =>
      metricValue(t, "trellis_identity_token_cache_lookups_total", { result: "hit" });
    assert.equal(reviews(now) - reviews(before), 1);
    assert.equal(hits(now) - hits(before), 4);
  });

  const refusals: Array<{
    name: string;
    status: number;
    code: string;
    request: () => Parameters<typeof rawCall>[1];
  }> = [
    {
      name: "a token for another audience",
      status: 401,
      code: "WrongAudience",
      request: () => ({
        token: token("web", "--audience", "https://kubernetes.default.svc"),
        body: csrFor(WEB_ID).pem,
      }),
    },
    {
      name: "an expired token",
      status: 401,
      code: "TokenExpired",
      request: () => ({
        token: madeUpJwt({ aud: ["identity.trellis.dev"], exp: Math.floor(Date.now() / 1000) - 60 }),
        body: csrFor(WEB_ID).pem,
      }),
    },
    {
      name: "a token the API server did not sign",
      status: 401,
      code: "InvalidToken",
      request: () => ({
        token: madeUpJwt({
          aud: ["identity.trellis.dev"],
          exp: Math.floor(Date.now() / 1000) + 600,
          sub: "system:serviceaccount:shop:web",
        }),
        body: csrFor(WEB_ID).pem,
      }),
    },
    { name: "no token", status: 401, code: "MissingToken", request: () => ({ body: csrFor(WEB_ID).pem }) },
    {
      name: "a CSR for another ServiceAccount",
      status: 403,
      code: "IdentityMismatch",
      request: () => ({ token: webToken, body: csrFor(API_ID).pem }),
    },
    {
      name: "a CSR without a SPIFFE ID",
      status: 403,
      code: "IdentityMismatch",
      request: () => ({ token: webToken, body: csrFor(undefined, ["web.shop.svc"]).pem }),
    },
    {
      name: "a CSR that also asks for a DNS name",
      status: 403,
      code: "IdentityMismatch",
      request: () => ({ token: webToken, body: csrFor(WEB_ID, ["kubernetes.default.svc"]).pem }),
    },
    {
      name: "a malformed CSR",
      status: 400,
      code: "MalformedCsr",
      request: () => ({
        token: webToken,
        body: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
      }),
    },
    {
      name: "a CSR with a bad signature",
      status: 400,
      code: "BadCsrSignature",
      request: () => {
        const der = pemBlocks(csrFor(WEB_ID).pem, "CERTIFICATE REQUEST")[0]!;
        der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0x01;
        return { token: webToken, body: der, contentType: "application/pkcs10" };
      },
    },
    {
      name: "a body over the limit, announced by content-length",
      status: 413,
      code: "BodyTooLarge",
      request: () => ({ token: webToken, body: Buffer.alloc(64 * 1024, 0x41) }),
    },
    {
      name: "a body over the limit, streamed",
      status: 413,
      code: "BodyTooLarge",
      request: () => ({ token: webToken, body: Buffer.alloc(64 * 1024, 0x41), chunked: true }),
    },
    {
      name: "another content type",
      status: 415,
      code: "UnsupportedMediaType",
      request: () => ({ token: webToken, body: "{}", contentType: "application/json" }),
    },
    {
      name: "another path",
      status: 404,
      code: "NotFound",
      request: () => ({ token: webToken, body: "", path: "/v1/sign" }),
    },
  ];

  for (const refusal of refusals) {
    it(`refuses ${refusal.name} with ${refusal.status} ${refusal.code}, counted in /metrics`, async () => {
      const counted = (t: string) =>
        metricValue(t, "trellis_identity_certify_total", { result: refusal.code });
      const before = counted(await metrics());
      const res = await rawCall(session, refusal.request());
      assert.equal(res.status, refusal.status, res.text);
      assert.equal(res.json.error, refusal.code, res.text);
      assert.equal(typeof res.json.message, "string");
      assert.ok(String(res.json.message).length > 10);
      assert.equal(counted(await metrics()) - before, 1);
    });
  }

  it("answers 408 RequestTimeout to a body that never ends, counted", async () => {
    const before = metricValue(await metrics(), "trellis_identity_certify_total", {
      result: "RequestTimeout",
    });
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/v1/certify",
        authorization: `Bearer ${webToken}`,
        "content-type": "application/pkcs10",
      });
      stream.write(csrFor(WEB_ID).pem.slice(0, 100)); // and never end
      let status = 0;
      let text = "";
      stream.on("response", (h) => {
        status = Number(h[":status"]);
      });
      stream.on("data", (c: Buffer) => {
        text += c.toString();
      });
      stream.on("error", reject);
      stream.on("close", () => resolve({ status, text }));
    });
    assert.equal(res.status, 408, res.text);
    assert.equal((JSON.parse(res.text) as { error: string }).error, "RequestTimeout");
    const after = metricValue(await metrics(), "trellis_identity_certify_total", {
      result: "RequestTimeout",
    });
    assert.equal(after - before, 1);
  });

  it("answers 429 TooManyRequests with retry-after beyond the in-flight TokenReview bound", async () => {
    // The process allows one TokenReview in flight; four uncached tokens arrive at once.
    const tokens = Array.from({ length: 4 }, () => token("web", "--audience", "identity.trellis.dev"));
    const answers = await Promise.all(
      tokens.map((t) => rawCall(session, { token: t, body: csrFor(WEB_ID).pem })),
    );
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(
      answers.some((a) => a.status === 200),
      answers.map((a) => a.status).join(","),
    );
    assert.ok(limited.length > 0, answers.map((a) => a.status).join(","));
    assert.equal(limited[0]?.json.error, "TooManyRequests");
    assert.equal(limited[0]?.headers["retry-after"], "1");
    assert.ok(
      metricValue(await metrics(), "trellis_identity_certify_total", { result: "TooManyRequests" }) >= 1,
    );
  });

  it("never writes a token to its log", () => {
    const log = cluster.logTail("identity", 10_000);
    assert.ok(!log.includes(webToken), "the log holds a token");
    assert.ok(!log.includes(webToken.split(".")[1]!), "the log holds a token's claims");
  });

  it("serves health and readiness on the admin port", async () => {
    assert.equal((await fetch(`http://127.0.0.1:${identity.adminPort}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${identity.adminPort}/readyz`)).status, 200);
  });
});
