// The identity service over time, against the real API server: a real proxy process obtains its
// certificate from it; a renewed issuer and then a rotated trust anchor written to the Secret are
// used without a restart (for issued leaves and for the serving certificate); a Secret that fails
// the checks is refused while the current issuer stays in use; a token of a deleted
// ServiceAccount is refused by the API server's TokenReview.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import { createCsr, generateKeyPair, pemBlocks, verifyChain } from "../../pki/index.ts";
import { repoRoot } from "../../test/cluster/binaries.ts";
import { freePort, LocalCluster, waitFor } from "../../test/cluster/local-cluster.ts";
import { ProcessGroup } from "../../test/cluster/process-group.ts";
import {
  applyIssuerSecret,
  connect,
  type IdentityProcess,
  metricValue,
  rawCall,
  SERVER_SPIFFE_ID,
  startIdentityProcess,
  type TestIssuer,
  testAnchor,
  testIssuer,
} from "./testing/identity-fixture.ts";

const WEB_ID = "spiffe://cluster.local/ns/shop/sa/web";

describe("identity service: a real proxy, issuer renewal and anchor rotation", { timeout: 180_000 }, () => {
  let cluster: LocalCluster;
  let identity: IdentityProcess;
  let first: TestIssuer;
  let webToken: string;
  /** The trust bundle a proxy holds now: anchor A, then A and B after the rotation. */
  let trusted = "";
  const group = new ProcessGroup();
  const adminGet = async (port: number, path: string) =>
    (await fetch(`http://127.0.0.1:${port}${path}`)).text();

  /** A leaf for shop/web from a new connection trusting `caPem`: its chain, and the server's certificate. */
  async function certifyOnce(caPem: string): Promise<{ chain: Buffer[]; server: X509Certificate }> {
    const session = connect(identity.url, caPem);
    try {
      const csr = createCsr({ keyPair: generateKeyPair(), spiffeId: WEB_ID }).pem;
      const res = await rawCall(session, { token: webToken, body: csr });
      assert.equal(res.status, 200, res.text);
      const server = (session.socket as unknown as TLSSocket).getPeerX509Certificate();
      assert.ok(server);
      return { chain: pemBlocks(String(res.json.certificateChainPem), "CERTIFICATE"), server };
    } finally {
      session.close();
    }
  }

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0 });
    cluster.kubectl(["create", "namespace", "trellis-system"]);
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["create", "serviceaccount", "web", "-n", "shop"]);
    first = testIssuer(testAnchor("root A"), "issuer A1");
    applyIssuerSecret(cluster, first);
    trusted = first.anchor.cert.pem;
    identity = await startIdentityProcess(cluster, group, ["--issuer-poll=1s"]);
    webToken = cluster
      .kubectl(["create", "token", "web", "-n", "shop", "--audience", "identity.trellis.dev"])
      .trim();
  });
  after(async () => {
    await group.stop();
    await cluster?.stop();
  });

  it("gives a real proxy process its certificate", async () => {
    const tokenPath = join(cluster.dir, "web.token");
    const bundlePath = join(cluster.dir, "bundle.pem");
    writeFileSync(tokenPath, webToken);
    writeFileSync(bundlePath, first.anchor.cert.pem);
    const [adminPort, outboundPort] = [await freePort(), await freePort()];
    const proxy = group.start({
      name: "proxy",
      command: process.execPath,
      args: ["--import", "tsx", "proxy/main.ts"],
      env: {
        ...process.env,
        TRELLIS_PROXY_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
        TRELLIS_PROXY_OUTBOUND_LISTEN: `127.0.0.1:${outboundPort}`,
        TRELLIS_PROXY_IDENTITY_URL: identity.url,
        TRELLIS_PROXY_IDENTITY_TOKEN_PATH: tokenPath,
        TRELLIS_PROXY_IDENTITY_SPIFFE_ID: WEB_ID,
        TRELLIS_PROXY_IDENTITY_SERVER_IDENTITY: SERVER_SPIFFE_ID,
        TRELLIS_PROXY_TRUST_BUNDLE_PATH: bundlePath,
      },
      logFile: join(cluster.dir, "proxy.log"),
      cwd: repoRoot,
    });
    await waitFor(
      async () => {
        if (proxy.exitCode() !== undefined) throw new Error(`proxy exited: ${cluster.logTail("proxy")}`);
        return (await fetch(`http://127.0.0.1:${adminPort}/ready`)).status === 200;
      },
      30_000,
      "the proxy to hold a leaf",
    );
    const status = JSON.parse(await adminGet(adminPort, "/identity")) as Record<string, unknown>;
    assert.equal(status.spiffeId, WEB_ID);
    assert.equal(typeof status.leafFingerprint, "string");
    const notAfter = Date.parse(String(status.leafNotAfter));
    assert.ok(Math.abs(notAfter - Date.now() - 86_400_000) < 120_000, String(status.leafNotAfter));
    const issued = metricValue(
      await adminGet(identity.adminPort, "/metrics"),
      "trellis_identity_certify_total",
      {
        result: "Issued",
      },
    );
    assert.ok(issued >= 1);
    await group.stopProcess(proxy);
  });

  it("signs with a renewed issuer without a restart", async () => {
    const renewed = testIssuer(first.anchor, "issuer A2");
    applyIssuerSecret(cluster, renewed);
    await waitFor(
      async () => (await certifyOnce(first.anchor.cert.pem)).chain[1]?.equals(renewed.cert.der) ?? false,
      15_000,
      "leaves from the renewed issuer",
    );
    const { chain, server } = await certifyOnce(first.anchor.cert.pem);
    assert.ok(verifyChain(chain, [first.anchor.cert.der]).ok);
    assert.ok(server.checkIssued(new X509Certificate(renewed.cert.der)), "the serving certificate follows");
    assert.match(cluster.logTail("identity", 200), /issuer changed/);
  });

  it("follows an anchor rotation: leaves and serving certificate chain to the new anchor", async () => {
    const anchorB = testAnchor("root B");
    const issuerB = testIssuer(anchorB, "issuer B1");
    applyIssuerSecret(cluster, issuerB, first.anchor.cert.pem + anchorB.cert.pem);
    trusted = first.anchor.cert.pem + anchorB.cert.pem;
    await waitFor(
      async () => (await certifyOnce(trusted)).chain[1]?.equals(issuerB.cert.der) ?? false,
      15_000,
      "leaves from the issuer under the new anchor",
    );
    // A client that trusts only the new anchor verifies the service and its leaves.
    const { chain } = await certifyOnce(anchorB.cert.pem);
    assert.ok(verifyChain(chain, [anchorB.cert.der]).ok);
    assert.equal(verifyChain(chain, [first.anchor.cert.der]).ok, false);
    assert.equal(identity.process.exitCode(), undefined, "no restart");
  });

  it("refuses a Secret that fails the checks and keeps the current issuer", async () => {
    const metricsBefore = await adminGet(identity.adminPort, "/metrics");
    const current = await certifyOnce(trusted);
    const stranger = testIssuer(testAnchor("root C"), "issuer C1");
    // ca.crt names anchors that did not sign this issuer.
    applyIssuerSecret(cluster, stranger, trusted);
    await waitFor(
      async () =>
        metricValue(await adminGet(identity.adminPort, "/metrics"), "trellis_identity_issuer_reloads_total", {
          result: "invalid",
        }) > metricValue(metricsBefore, "trellis_identity_issuer_reloads_total", { result: "invalid" }),
      15_000,
      "the invalid Secret to be refused",
    );
    const after = await certifyOnce(trusted);
    assert.ok(
      after.chain[1]?.equals(current.chain[1] ?? Buffer.alloc(0)),
      "the issuer in use did not change",
    );
    assert.match(cluster.logTail("identity", 200), /not usable, keeping the current issuer/);
  });

  it("refuses the token of a deleted ServiceAccount (the API server's TokenReview says no)", async () => {
    cluster.kubectl(["create", "serviceaccount", "gone", "-n", "shop"]);
    const token = cluster
      .kubectl(["create", "token", "gone", "-n", "shop", "--audience", "identity.trellis.dev"])
      .trim();
    cluster.kubectl(["delete", "serviceaccount", "gone", "-n", "shop"]);
    const session = connect(identity.url, trusted);
    try {
      const csr = createCsr({
        keyPair: generateKeyPair(),
        spiffeId: "spiffe://cluster.local/ns/shop/sa/gone",
      }).pem;
      const res = await rawCall(session, { token, body: csr });
      assert.equal(res.status, 401, res.text);
      assert.equal(res.json.error, "InvalidToken");
    } finally {
      session.close();
    }
  });
});
