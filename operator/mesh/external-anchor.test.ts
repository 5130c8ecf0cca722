// The checks a user-provided trust anchor must pass, as a table of Secrets; the whole path (copy,
// issuer, bundle, conditions) runs against the real cluster in
// test/integration/external-trust-anchor.test.ts.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { V1Secret } from "@kubernetes/client-node";
import { fingerprint, issueLeaf, privateKeyToPem } from "../../pki/index.ts";
import { DAY, fromNow, issuer, trustAnchor } from "../../pki/testing/hierarchy.ts";
import { checkExternalAnchor } from "./external-anchor.ts";

/** An RSA root made by openssl (Trellis signs only with P-256): certificate and key PEM. */
function rsaCa(): string {
  const dir = mkdtempSync(join(tmpdir(), "trellis-rsa-"));
  try {
    const run = spawnSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=rsa root",
        "-days",
        "30",
        "-keyout",
        "k.pem",
        "-out",
        "c.pem",
      ],
      { cwd: dir },
    );
    assert.equal(run.status, 0, String(run.stderr));
    return readFileSync(join(dir, "c.pem"), "utf8") + readFileSync(join(dir, "k.pem"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const ref = { namespace: "security", name: "corp-root" };
const b64 = (s: string) => Buffer.from(s).toString("base64");
const secret = (data: Record<string, string>): V1Secret => ({
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
});

describe("user-provided trust anchor checks", () => {
  const root = trustAnchor("corp root");
  const rootKey = privateKeyToPem(root.keys.privateKey);
  const now = new Date();

  it("accepts a self-signed P-256 CA with its key, and publishes ca.crt's other anchors beside it", () => {
    const old = trustAnchor("corp root (old)");
    const check = checkExternalAnchor(
      secret({
        "tls.crt": root.certificate.pem,
        "tls.key": rootKey,
        "ca.crt": old.certificate.pem + root.certificate.pem,
      }),
      ref,
      now,
    );
    assert.ok(check.ok, check.ok ? "" : check.message);
    assert.equal(check.anchor.fingerprint, fingerprint(root.certificate.der));
    assert.equal(
      check.anchor.bundlePem,
      root.certificate.pem + old.certificate.pem,
      "anchor first, no duplicate",
    );
  });

  const mid = issuer("corp intermediate", root);
  const other = trustAnchor("someone else");
  const leaf = issueLeaf({
    publicKey: other.keys.publicKey,
    signer: root.signer,
    dnsNames: ["x.example"],
    notAfter: fromNow(DAY),
  });
  const expired = trustAnchor("expired", { notBefore: fromNow(-10 * DAY), notAfter: fromNow(-DAY) });
  const rsa = rsaCa();
  const cases: Array<[string, V1Secret | undefined, string, RegExp]> = [
    ["a missing Secret", undefined, "TrustAnchorSecretNotFound", /does not exist/],
    [
      "a Secret without tls.key",
      secret({ "tls.crt": root.certificate.pem }),
      "TrustAnchorInvalid",
      /tls.key/,
    ],
    [
      "garbage",
      secret({
        "tls.crt": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "tls.key": rootKey,
      }),
      "TrustAnchorInvalid",
      /./,
    ],
    [
      "a leaf",
      secret({ "tls.crt": leaf.pem, "tls.key": privateKeyToPem(other.keys.privateKey) }),
      "TrustAnchorInvalid",
      /not a CA/,
    ],
    [
      "an intermediate",
      secret({ "tls.crt": mid.certificate.pem, "tls.key": privateKeyToPem(mid.keys.privateKey) }),
      "TrustAnchorInvalid",
      /not self-signed/,
    ],
    [
      "an expired anchor",
      secret({ "tls.crt": expired.certificate.pem, "tls.key": privateKeyToPem(expired.keys.privateKey) }),
      "TrustAnchorExpired",
      /expired at/,
    ],
    [
      "another CA's key",
      secret({ "tls.crt": root.certificate.pem, "tls.key": privateKeyToPem(other.keys.privateKey) }),
      "TrustAnchorInvalid",
      /KeyMismatch|key/,
    ],
    ["an RSA CA", secret({ "tls.crt": rsa, "tls.key": rsa }), "TrustAnchorInvalid", /P-256/],
  ];
  for (const [what, input, reason, message] of cases) {
    it(`refuses ${what} with ${reason}`, () => {
      const check = checkExternalAnchor(input, ref, new Date());
      assert.equal(check.ok, false);
      if (check.ok) return;
      assert.equal(check.reason, reason, check.message);
      assert.match(check.message, message);
      assert.match(check.message, /security\/corp-root/);
      assert.doesNotMatch(check.message, /PRIVATE KEY|BEGIN/, "no key material in a condition");
    });
  }
});
