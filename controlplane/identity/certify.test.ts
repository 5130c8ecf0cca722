// The signing path and the checks before it, as pure functions: the identity rule, CSR failures,
// issuer expiry, token claims and the expiring LRU. The same code runs behind the endpoint, which
// identity-endpoint.test.ts exercises against the real API server; the endpoint's bound on the
// bodies it holds is tested here, in process, with a stand-in for the TokenReview.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { describe, it } from "node:test";
import pino from "pino";
import { Registry } from "../../kube/index.ts";
import { createCsr, generateKeyPair, parseCertificate, pemBlocks, verifyChain } from "../../pki/index.ts";
import { bearerToken, checkClaims, readClaims } from "./bearer-token.ts";
import { signCsr } from "./certify.ts";
import { CertifyError } from "./certify-errors.ts";
import { DEFAULT_LIMITS, startCertifyServer } from "./certify-server.ts";
import { IdentityMetrics } from "./identity-metrics.ts";
import { issuerFromSecret, servingCredentials, servingNames } from "./issuer.ts";
import {
  DAY_MS,
  issuerSecretManifest,
  madeUpJwt,
  testAnchor,
  testIssuer,
} from "./testing/identity-fixture.ts";
import { ExpiringLru } from "./token-cache.ts";
import { accountOf } from "./token-review.ts";

const anchor = testAnchor("unit root");
const issuerMaterial = testIssuer(anchor, "unit issuer");
const secretData = (m = issuerMaterial, ca = anchor.cert.pem) => {
  const data = (JSON.parse(issuerSecretManifest(m, ca)) as { data: Record<string, string> }).data;
  const decode = (k: string) => Buffer.from(data[k] ?? "", "base64").toString("utf8");
  return { "tls.crt": decode("tls.crt"), "tls.key": decode("tls.key"), "ca.crt": decode("ca.crt") };
};
const issuer = issuerFromSecret(secretData());
const policy = { trustDomain: "cluster.local", lifetimeMs: DAY_MS };
const web = { namespace: "shop", name: "web" };
const WEB_ID = "spiffe://cluster.local/ns/shop/sa/web";

function csr(o: { spiffeId?: string; dnsNames?: string[] } = { spiffeId: WEB_ID }): string {
  return createCsr({ keyPair: generateKeyPair(), ...o }).pem;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CertifyError) return err.code;
    throw err;
  }
  return "accepted";
}

describe("signCsr", () => {
  it("issues a 24 h leaf for exactly the account's SPIFFE ID, chained to the issuer", () => {
    const answer = signCsr(csr(), web, issuer, policy);
    const chain = pemBlocks(answer.certificateChainPem, "CERTIFICATE");
    assert.equal(chain.length, 2);
    const verified = verifyChain(chain, [anchor.cert.der]);
    assert.ok(verified.ok && verified.spiffeId === WEB_ID);
    const leaf = parseCertificate(chain[0]!);
    assert.ok(Math.abs(leaf.notAfter.getTime() - Date.now() - DAY_MS) < 5_000);
    assert.match(answer.notAfter, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  const cases: Array<[string, () => unknown, string]> = [
    [
      "another account's identity",
      () => signCsr(csr({ spiffeId: "spiffe://cluster.local/ns/shop/sa/api" }), web, issuer, policy),
      "IdentityMismatch",
    ],
    [
      "another trust domain",
      () => signCsr(csr({ spiffeId: "spiffe://other.td/ns/shop/sa/web" }), web, issuer, policy),
      "IdentityMismatch",
    ],
    [
      "no SPIFFE ID",
      () => signCsr(csr({ dnsNames: ["web.shop.svc"] }), web, issuer, policy),
      "IdentityMismatch",
    ],
    [
      "extra DNS names",
      () => signCsr(csr({ spiffeId: WEB_ID, dnsNames: ["x.example"] }), web, issuer, policy),
      "IdentityMismatch",
    ],
    ["not a CSR", () => signCsr("hello", web, issuer, policy), "MalformedCsr"],
    ["an empty body", () => signCsr(Buffer.alloc(0), web, issuer, policy), "MalformedCsr"],
    [
      "a truncated CSR",
      () => signCsr(pemBlocks(csr(), "CERTIFICATE REQUEST")[0]!.subarray(0, 100), web, issuer, policy),
      "MalformedCsr",
    ],
    [
      "a tampered signature",
      () => {
        const der = pemBlocks(csr(), "CERTIFICATE REQUEST")[0]!;
        der[der.length - 3] = (der[der.length - 3] ?? 0) ^ 0xff;
        return signCsr(der, web, issuer, policy);
      },
      "BadCsrSignature",
    ],
    [
      "an expired issuer",
      () => signCsr(csr(), web, issuer, policy, issuer.notAfter.getTime() + 1),
      "IssuerExpired",
    ],
  ];
  for (const [name, fn, code] of cases) {
    it(`refuses ${name} with ${code}`, () => assert.equal(refusal(fn), code));
  }
});

describe("issuerFromSecret", () => {
  it("drops the anchor from tls.crt and keeps the issuer first", () => {
    const withAnchor = { ...secretData(), "tls.crt": issuerMaterial.cert.pem + anchor.cert.pem };
    const loaded = issuerFromSecret(withAnchor);
    assert.equal(pemBlocks(loaded.chainPem, "CERTIFICATE").length, 1);
  });

  it("refuses an issuer that does not chain to ca.crt, or a key of another issuer", () => {
    const other = testIssuer(testAnchor("other root"), "other issuer");
    assert.throws(() => issuerFromSecret(secretData(other, anchor.cert.pem)), /does not verify/);
    const mixed = { ...secretData(), "tls.key": secretData(other)["tls.key"] };
    assert.throws(() => issuerFromSecret(mixed));
    assert.throws(() => issuerFromSecret({ "tls.crt": issuerMaterial.cert.pem }), /lacks/);
  });

  it("makes a serving certificate with the service's names", () => {
    const serving = servingCredentials(
      issuer,
      servingNames("cluster.local", "trellis-system", "trellis-identity"),
      DAY_MS,
    );
    const leaf = parseCertificate(pemBlocks(serving.cert, "CERTIFICATE")[0]!);
    assert.equal(leaf.spiffeId, "spiffe://cluster.local/ns/trellis-system/sa/trellis-identity");
    assert.ok(leaf.dnsNames.includes("trellis-identity.trellis-system.svc"));
    assert.deepEqual(leaf.ipAddresses, ["127.0.0.1"]);
  });
});

describe("bearer token claims", () => {
  const now = Date.now();
  const exp = Math.floor(now / 1000) + 600;
  const cases: Array<[string, () => unknown, string]> = [
    ["no header", () => bearerToken(undefined), "MissingToken"],
    ["a Basic header", () => bearerToken("Basic dXNlcjpwdw=="), "MissingToken"],
    ["an empty Bearer token", () => bearerToken("Bearer "), "MissingToken"],
    ["an oversized token", () => bearerToken(`Bearer ${"a".repeat(9000)}`), "InvalidToken"],
    ["not a JWT", () => readClaims("opaque-token"), "InvalidToken"],
    ["a JWT without exp", () => readClaims(madeUpJwt({ aud: "identity.trellis.dev" })), "InvalidToken"],
    ["a JWT payload that is not JSON", () => readClaims("a.bm90IGpzb24.c"), "InvalidToken"],
    [
      "another audience",
      () => checkClaims(readClaims(madeUpJwt({ aud: ["api"], exp })), "identity.trellis.dev", now),
      "WrongAudience",
    ],
    [
      "an expired token",
      () =>
        checkClaims(
          readClaims(madeUpJwt({ aud: "identity.trellis.dev", exp: exp - 1200 })),
          "identity.trellis.dev",
          now,
        ),
      "TokenExpired",
    ],
    [
      "a bound token for the audience",
      () =>
        checkClaims(
          readClaims(madeUpJwt({ aud: ["x", "identity.trellis.dev"], exp })),
          "identity.trellis.dev",
          now,
        ),
      "accepted",
    ],
  ];
  for (const [name, fn, code] of cases) {
    it(`${name} → ${code}`, () => assert.equal(refusal(fn), code));
  }
});

describe("TokenReview status", () => {
  const audience = "identity.trellis.dev";
  it("accepts an authenticated ServiceAccount", () => {
    const status = {
      authenticated: true,
      audiences: [audience],
      user: { username: "system:serviceaccount:shop:web" },
    };
    assert.deepEqual(accountOf(status, audience), web);
  });
  const cases: Array<[string, object, string]> = [
    ["unauthenticated", { authenticated: false, error: "token has expired" }, "InvalidToken"],
    [
      "another audience",
      { authenticated: true, audiences: ["api"], user: { username: "system:serviceaccount:a:b" } },
      "WrongAudience",
    ],
    [
      "no audience confirmed (valid for the API server's audience only)",
      { authenticated: true, user: { username: "system:serviceaccount:a:b" } },
      "WrongAudience",
    ],
    [
      "a user",
      { authenticated: true, audiences: [audience], user: { username: "alice" } },
      "NotServiceAccount",
    ],
  ];
  for (const [name, status, code] of cases) {
    it(`${name} → ${code}`, () =>
      assert.equal(
        refusal(() => accountOf(status, audience)),
        code,
      ));
  }
});

describe("ExpiringLru", () => {
  it("expires entries at their own time and evicts the least recently used", () => {
    const lru = new ExpiringLru<number>(2);
    lru.set("a", 1, 100);
    lru.set("b", 2, 1000);
    assert.equal(lru.get("a", 50), 1); // a is now the most recent
    lru.set("c", 3, 1000); // evicts b
    assert.equal(lru.get("b", 50), undefined);
    assert.equal(lru.get("a", 150), undefined, "a expired at 100");
    assert.equal(lru.get("c", 150), 3);
    assert.equal(lru.size, 1);
  });
});

describe("certify endpoint", () => {
  it("answers 429 once the bodies it holds pass maxBufferedBytes, and serves again when they are gone", async () => {
    const serving = servingCredentials(
      issuer,
      servingNames("cluster.local", "trellis-system", "trellis-identity"),
      DAY_MS,
    );
    const server = await startCertifyServer({
      port: 0,
      host: "127.0.0.1",
      tls: serving,
      handler: {
        policy,
        limits: { ...DEFAULT_LIMITS, maxBufferedBytes: 64 * 1024 },
        issuer: () => issuer,
        authenticate: async () => web,
        metrics: new IdentityMetrics(new Registry()),
        logger: pino({ level: "silent" }),
      },
    });
    const client = http2.connect(`https://127.0.0.1:${server.port}`, { rejectUnauthorized: false });
    client.on("error", () => {});
    const send = (body?: Buffer | string) => {
      const stream = client.request({
        ":method": "POST",
        ":path": "/v1/certify",
        "content-type": "application/pkcs10",
        authorization: "Bearer made.up.token",
      });
      stream.on("error", () => {});
      const answer = new Promise<{ status: number; error?: string }>((resolve) => {
        let status = 0;
        let text = "";
        stream.on("response", (h) => {
          status = Number(h[":status"]);
        });
        stream.on("data", (d: Buffer) => {
          text += d;
        });
        // The answer is complete at its END_STREAM, while a client that sent no end of its own
        // keeps the stream half open.
        const done = () => resolve({ status, ...(text ? { error: JSON.parse(text).error } : {}) });
        stream.on("end", done);
        stream.on("close", done);
      });
      if (body !== undefined) stream.end(body);
      return { stream, answer };
    };
    try {
      // Eight bodies of 12 KiB each (under maxBodyBytes), none finished: 96 KiB against 64 KiB.
      const held = Array.from({ length: 8 }, () => send());
      for (const { stream } of held) stream.write(Buffer.alloc(12 * 1024, 0x41));
      const refused = await Promise.race(held.map(({ answer }) => answer));
      assert.deepEqual(refused, { status: 429, error: "TooManyRequests" });
      for (const { stream } of held) if (!stream.closed) stream.end();
      const rest = await Promise.all(held.map(({ answer }) => answer));
      assert.ok(
        rest.some((a) => a.status === 400),
        "the bodies held were read to their end",
      );
      assert.equal((await send(csr()).answer).status, 200, "the bound is free again");
    } finally {
      await new Promise<void>((resolve) => client.close(() => resolve()));
      await server.close();
    }
  });
});
