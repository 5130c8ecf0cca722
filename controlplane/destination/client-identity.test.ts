// Table tests of who may subscribe to the destination service and how refusals are named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
