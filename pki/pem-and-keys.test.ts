// PEM armour and key handling: bundles with several blocks, strict refusal of broken PEM, PKCS#8
// and SEC 1 private keys, and refusal of keys that are not ECDSA P-256.

import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import { generateKeyPair, PkiError, pemBlocks, privateKeyFromPem, privateKeyToPem, toPem } from "./index.ts";
import { trustAnchor } from "./testing/hierarchy.ts";
import { opensslOrThrow } from "./testing/openssl-cli.ts";

const isCode = (code: string) => (e: unknown) => e instanceof PkiError && e.code === code;

describe("PEM", () => {
  const a = trustAnchor("Root A").certificate;
  const b = trustAnchor("Root B").certificate;

  test("toPem writes 64-character lines that openssl and node read", () => {
    const lines = a.pem.trimEnd().split("\n");
    assert.equal(lines[0], "-----BEGIN CERTIFICATE-----");
    assert.ok(lines.slice(1, -2).every((line) => line.length === 64));
    assert.equal(
      new X509Certificate(toPem("CERTIFICATE", a.der)).fingerprint256.replaceAll(":", "").toLowerCase(),
      a.fingerprint,
    );
    assert.match(
      opensslOrThrow(["x509", "-in", "a.pem", "-noout", "-subject"], { "a.pem": a.pem }),
      /CN = Root A/,
    );
  });

  test("pemBlocks returns every block of a bundle, in order, skipping comments", () => {
    const bundle = `# old anchor\n${a.pem}\n# new anchor\r\n${b.pem.replaceAll("\n", "\r\n")}`;
    assert.deepEqual(pemBlocks(bundle), [a.der, b.der]);
    assert.deepEqual(pemBlocks(bundle, "CERTIFICATE"), [a.der, b.der]);
    assert.deepEqual(pemBlocks(bundle, "PRIVATE KEY"), []);
    assert.deepEqual(pemBlocks(""), []);
  });

  const broken = [
    { name: "mismatched END label", pem: a.pem.replace("END CERTIFICATE", "END PRIVATE KEY") },
    { name: "missing END line", pem: a.pem.replace(/-----END CERTIFICATE-----\n$/, "") },
    { name: "characters outside base64", pem: a.pem.replace(/\n[A-Za-z0-9]/, "\n*") },
    { name: "a body of the wrong length", pem: a.pem.replace(/\n[A-Za-z0-9]/, "\n") },
  ];
  for (const c of broken) {
    test(`pemBlocks refuses ${c.name}`, () => {
      assert.throws(() => pemBlocks(c.pem), isCode("MalformedPem"));
    });
  }
});

describe("private keys", () => {
  test("PKCS#8 round trip, readable by openssl", () => {
    const keys = generateKeyPair();
    const pem = privateKeyToPem(keys.privateKey);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.ok(privateKeyFromPem(pem).equals(keys.privateKey));
    assert.match(
      opensslOrThrow(["pkey", "-in", "k.pem", "-noout", "-text"], { "k.pem": pem }),
      /NIST CURVE: P-256/,
    );
  });

  test("SEC 1 'EC PRIVATE KEY' (cert-manager's default encoding) is accepted", () => {
    const keys = generateKeyPair();
    const sec1 = keys.privateKey.export({ type: "sec1", format: "pem" }).toString();
    assert.ok(privateKeyFromPem(sec1).equals(keys.privateKey));
  });

  const refused = [
    {
      name: "an RSA key",
      pem: () =>
        generateKeyPairSync("rsa", { modulusLength: 2048 })
          .privateKey.export({ type: "pkcs8", format: "pem" })
          .toString(),
      code: "UnsupportedKey",
    },
    {
      name: "a P-384 key",
      pem: () =>
        generateKeyPairSync("ec", { namedCurve: "P-384" })
          .privateKey.export({ type: "pkcs8", format: "pem" })
          .toString(),
      code: "UnsupportedKey",
    },
    {
      name: "a public key",
      pem: () => generateKeyPair().publicKey.export({ type: "spki", format: "pem" }).toString(),
      code: "MalformedPrivateKey",
    },
    {
      name: "garbage",
      pem: () => "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      code: "MalformedPrivateKey",
    },
    {
      name: "an encrypted key",
      pem: () =>
        generateKeyPair()
          .privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" })
          .toString(),
      code: "MalformedPrivateKey",
    },
  ];
  for (const c of refused) {
    test(`privateKeyFromPem refuses ${c.name}`, () => {
      assert.throws(() => privateKeyFromPem(c.pem()), isCode(c.code));
    });
  }

  test("privateKeyToPem refuses a public key, and errors never carry key material", () => {
    const keys = generateKeyPair();
    assert.throws(() => privateKeyToPem(keys.publicKey), isCode("UnsupportedKey"));
    const pem = privateKeyToPem(keys.privateKey);
    const body = pem.split("\n")[1] ?? "";
    try {
      privateKeyFromPem(pem.replace(body, body.replace(/[A-Z]/, "z")));
    } catch (e) {
      assert.ok(e instanceof Error && !e.message.includes(body.slice(0, 16)));
    }
  });
});
