// parseCertificate on input Trellis did not produce: certificates from openssl and @peculiar/x509,
// and the malformed or unsupported shapes it must refuse with MalformedCertificate.

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { describe, test } from "node:test";
import { generateKeyPair, PkiError, parseCertificate, pemBlocks, privateKeyToPem } from "./index.ts";
import { DAY, fromNow, trustAnchor } from "./testing/hierarchy.ts";
import { opensslOrThrow } from "./testing/openssl-cli.ts";
import { x509 } from "./testing/peculiar-x509.ts";

const isMalformed = (e: unknown) => e instanceof PkiError && e.code === "MalformedCertificate";
const root = trustAnchor("Decode Root");

async function peculiarCertificate(extensions: InstanceType<typeof x509.Extension>[]): Promise<Buffer> {
  const keys = generateKeyPair();
  const pkcs8 = keys.privateKey.export({ type: "pkcs8", format: "der" });
  const signingKey = await webcrypto.subtle.importKey(
    "pkcs8",
    pkcs8,
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const cert = await x509.X509CertificateGenerator.create({
    issuer: "CN=Peculiar",
    subject: "CN=Peculiar Leaf",
    notAfter: fromNow(DAY),
    publicKey: keys.publicKey.export({ type: "spki", format: "der" }),
    signingKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions,
  });
  return Buffer.from(cert.rawData);
}

describe("parseCertificate reads certificates made elsewhere", () => {
  test("an openssl certificate with DNS, IP and URI SANs", () => {
    const key = privateKeyToPem(generateKeyPair().privateKey);
    const pem = opensslOrThrow(
      [
        ..."req -x509 -key k.pem -subj /CN=openssl-leaf -days 2".split(" "),
        ..."-addext subjectAltName=DNS:a.example,IP:10.0.0.1,URI:spiffe://td/ns/a/sa/b".split(" "),
      ],
      { "k.pem": key },
    );
    const [der] = pemBlocks(pem, "CERTIFICATE");
    assert.ok(der);
    const info = parseCertificate(der);
    assert.equal(info.subjectCommonName, "openssl-leaf");
    assert.deepEqual(
      [info.dnsNames, info.ipAddresses, info.spiffeId],
      [["a.example"], ["10.0.0.1"], "spiffe://td/ns/a/sa/b"],
    );
    assert.equal(typeof info.subjectKeyIdHex, "string");
  });

  test("a @peculiar/x509 certificate with PrintableString names", async () => {
    const info = parseCertificate(await peculiarCertificate([]));
    assert.equal(info.subjectCommonName, "Peculiar Leaf");
    assert.equal(info.issuerCommonName, "Peculiar");
    assert.equal(info.isCa, false);
  });
});

describe("parseCertificate refuses", () => {
  const der = root.certificate.der;
  test("every truncation of a certificate", () => {
    for (let length = 0; length < der.length; length++) {
      assert.throws(() => parseCertificate(der.subarray(0, length)), isMalformed, `length ${length}`);
    }
  });

  test("inner and outer signature algorithms that differ", () => {
    const changed = Buffer.from(der);
    const outer = changed.lastIndexOf(Buffer.from("2a8648ce3d040302", "hex"));
    changed[outer + 7] = 0x03;
    assert.throws(() => parseCertificate(changed), isMalformed);
  });

  test("an extension that appears twice", async () => {
    const san = new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "a.example" }]);
    const twice = await peculiarCertificate([
      san,
      new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "b.example" }]),
    ]);
    assert.throws(() => parseCertificate(twice), isMalformed);
    assert.deepEqual(parseCertificate(await peculiarCertificate([san])).dnsNames, ["a.example"]);
  });

  test("a version 1 certificate", () => {
    const key = privateKeyToPem(generateKeyPair().privateKey);
    const csr = opensslOrThrow("req -new -key k.pem -subj /CN=v1".split(" "), { "k.pem": key });
    const pem = opensslOrThrow("x509 -req -in r.pem -key k.pem -days 1".split(" "), {
      "k.pem": key,
      "r.pem": csr,
    });
    const [v1] = pemBlocks(pem, "CERTIFICATE");
    assert.ok(v1);
    const text = opensslOrThrow("x509 -in c.pem -noout -text".split(" "), { "c.pem": pem });
    assert.match(text, /Version: 1 \(0x0\)/);
    assert.throws(() => parseCertificate(v1), isMalformed);
  });
});
