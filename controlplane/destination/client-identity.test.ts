// Table tests of who may subscribe to the destination service and how refusals are named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { opensslOrThrow } from "../../pki/testing/openssl-cli.ts";
import { checkClientIdentity, checkClientLeaf, classifyHandshakeError } from "./client-identity.ts";

describe("destination client identity", () => {
  const cases: [string | undefined, string][] = [
    ["spiffe://cluster.local/ns/shop/sa/web", "Accepted"],
    ["spiffe://cluster.local/ns/trellis-system/sa/trellis-proxy", "Accepted"],
    [undefined, "NotMeshIdentity"],
    ["spiffe://other.domain/ns/shop/sa/web", "NotMeshIdentity"],
    ["spiffe://cluster.local.evil/ns/shop/sa/web", "NotMeshIdentity"],
    ["spiffe://cluster.local/ns/shop", "NotMeshIdentity"],
    ["spiffe://cluster.local/ns/shop/sa/web/extra", "NotMeshIdentity"],
    ["spiffe://cluster.local/identity", "NotMeshIdentity"],
    ["spiffe://cluster.local/ns/../sa/web", "NotMeshIdentity"],
    ["spiffe://cluster.local/ns/shop/sa/..", "NotMeshIdentity"],
  ];
  for (const [id, result] of cases) {
    it(`${id ?? "(no SPIFFE ID)"} → ${result}`, () => {
      assert.equal(checkClientIdentity(id, "cluster.local").result, result);
    });
  }

  it("names a connection without a certificate", () => {
    assert.equal(checkClientLeaf(undefined, "cluster.local").result, "NoClientCertificate");
    assert.equal(checkClientLeaf(Buffer.alloc(0), "cluster.local").result, "NoClientCertificate");
    assert.equal(checkClientLeaf(Buffer.from("not DER"), "cluster.local").result, "NotMeshIdentity");
  });

  it("takes the SPIFFE ID only from an X.509-SVID leaf, as the proxies do", () => {
    /** A self-signed certificate (DER) with these extensions, made by openssl, not pki/. */
    const cert = (san: string, constraints = "CA:FALSE") => {
      const pem = opensslOrThrow([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "key.pem",
        "-subj",
        "/CN=leaf",
        "-days",
        "1",
        "-addext",
        `subjectAltName=${san}`,
        "-addext",
        `basicConstraints=critical,${constraints}`,
      ]);
      return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s/g, ""), "base64");
    };
    const web = "spiffe://cluster.local/ns/shop/sa/web";
    assert.deepEqual(checkClientLeaf(cert(`URI:${web}`), "cluster.local"), {
      ok: true,
      result: "Accepted",
      identity: web,
    });
    for (const [name, der] of [
      ["two URI SANs", cert(`URI:${web},URI:spiffe://cluster.local/ns/kube-system/sa/admin`)],
      ["a CA certificate", cert(`URI:${web}`, "CA:TRUE")],
    ] as const) {
      const verdict = checkClientLeaf(der, "cluster.local");
      assert.equal(verdict.result, "NotMeshIdentity", name);
      assert.match(verdict.ok ? "" : verdict.message, /not an X\.509-SVID leaf/, name);
    }
  });

  it("classifies handshake refusals", () => {
    const e = (message: string, code?: string) => Object.assign(new Error(message), { code });
    assert.equal(
      classifyHandshakeError(
        e("peer did not return a certificate", "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE"),
      ),
      "NoClientCertificate",
    );
    assert.equal(
      classifyHandshakeError(e("certificate verify failed", "ERR_SSL_CERTIFICATE_VERIFY_FAILED")),
      "UntrustedClientCertificate",
    );
    assert.equal(
      classifyHandshakeError(e("socket hang up", "ECONNRESET"), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"),
      "UntrustedClientCertificate",
    );
    assert.equal(classifyHandshakeError(e("wrong version number")), "HandshakeFailed");
  });
});
