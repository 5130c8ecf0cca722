// Every kind of certificate the pki module issues, checked by three implementations that share no
// code with it: node:crypto's X509Certificate (OpenSSL), the openssl CLI and @peculiar/x509.

import assert from "node:assert/strict";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { describe, test } from "node:test";
import {
  fingerprint,
  type IssuedCertificate,
  issueLeaf,
  PkiError,
  parseCertificate,
  spiffeIdFor,
} from "./index.ts";
import { type Authority, DAY, fromNow, HOUR, issuer, trustAnchor } from "./testing/hierarchy.ts";
import { openssl, opensslOrThrow, opensslVerify } from "./testing/openssl-cli.ts";
import { x509 } from "./testing/peculiar-x509.ts";

const root = trustAnchor("Trellis Root 2026");
const mid = issuer("Trellis Issuer", root);
const leafKeys = generateKeyPairSync("ec", { namedCurve: "P-256" });
const spiffeId = spiffeIdFor("cluster.local", "shop", "checkout");

interface Kind {
  name: string;
  cert: IssuedCertificate;
  parent: Authority;
  ca: boolean;
  pathLen?: number;
  keyUsage: number;
  subject?: string;
  san?: string;
  untrusted?: string;
}

const kinds: Kind[] = [
  {
    name: "trust anchor",
    cert: root.certificate,
    parent: root,
    ca: true,
    keyUsage: 96,
    subject: "CN=Trellis Root 2026",
  },
  {
    name: "issuer",
    cert: mid.certificate,
    parent: root,
    ca: true,
    pathLen: 0,
    keyUsage: 96,
    subject: "CN=Trellis Issuer",
  },
  {
    name: "workload leaf (SPIFFE ID, empty subject)",
    cert: issueLeaf({ publicKey: leafKeys.publicKey, signer: mid.signer, spiffeId, notAfter: fromNow(DAY) }),
    parent: mid,
    ca: false,
    keyUsage: 1,
    san: `URI:${spiffeId}`,
    untrusted: mid.certificate.pem,
  },
  {
    name: "serving leaf (DNS and IP SANs, CN)",
    cert: issueLeaf({
      publicKey: leafKeys.publicKey,
      signer: mid.signer,
      commonName: "trellis-webhook",
      dnsNames: ["trellis-webhook.trellis-system.svc", "localhost"],
      ipAddresses: ["127.0.0.1", "::1", "fd00:10::2a"],
      notAfter: fromNow(DAY),
    }),
    parent: mid,
    ca: false,
    keyUsage: 1,
    subject: "CN=trellis-webhook",
    san: "DNS:trellis-webhook.trellis-system.svc, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:10:0:0:0:0:0:2A",
    untrusted: mid.certificate.pem,
  },
];

describe("issued certificates, checked by independent implementations", () => {
  for (const kind of kinds) {
    test(`${kind.name}: node:crypto X509Certificate`, () => {
      const cert = new X509Certificate(kind.cert.pem);
      const parent = new X509Certificate(kind.parent.certificate.pem);
      assert.ok(cert.checkIssued(parent), "checkIssued");
      assert.ok(cert.verify(parent.publicKey), "signature verifies with the parent key");
      assert.equal(cert.ca, kind.ca);
      // An empty subject reads as undefined on Node 20 and as "" on Node 24.
      assert.equal(cert.subject || undefined, kind.subject);
      assert.equal(cert.subjectAltName, kind.san);
      assert.equal(cert.serialNumber.toLowerCase(), kind.cert.serialHex);
      assert.equal(cert.fingerprint256.replaceAll(":", "").toLowerCase(), kind.cert.fingerprint);
      assert.equal(new Date(cert.validTo).getTime(), kind.cert.notAfter.getTime());
      assert.equal(new Date(cert.validFrom).getTime(), kind.cert.notBefore.getTime());
    });

    test(`${kind.name}: openssl verify and extension text`, () => {
      const result = opensslVerify({
        leafPem: kind.cert.pem,
        anchorsPem: root.certificate.pem,
        ...(kind.untrusted ? { untrustedPem: kind.untrusted } : {}),
      });
      assert.ok(result.ok, result.output);
      const text = opensslOrThrow(["x509", "-in", "c.pem", "-noout", "-ext", "basicConstraints,keyUsage"], {
        "c.pem": kind.cert.pem,
      });
      const basic = kind.ca
        ? `CA:TRUE${kind.pathLen === undefined ? "" : `, pathlen:${kind.pathLen}`}`
        : "CA:FALSE";
      assert.match(text, new RegExp(`Basic Constraints: critical\\s+${basic}\\n`));
      assert.match(
        text,
        kind.ca
          ? /Key Usage: critical\s+Certificate Sign, CRL Sign/
          : /Key Usage: critical\s+Digital Signature\n/,
      );
    });

    test(`${kind.name}: @peculiar/x509 and parseCertificate agree`, async () => {
      const cert = new x509.X509Certificate(kind.cert.der);
      const parent = new x509.X509Certificate(kind.parent.certificate.der);
      assert.ok(await cert.verify({ publicKey: parent.publicKey, signatureOnly: true }));
      const info = parseCertificate(kind.cert.der);
      const basic = cert.getExtension(x509.BasicConstraintsExtension);
      assert.equal(basic?.critical, true);
      assert.equal(basic?.ca, kind.ca);
      assert.equal(basic?.pathLength, kind.pathLen);
      assert.equal(info.isCa, kind.ca);
      assert.equal(info.pathLen, kind.pathLen);
      assert.equal(cert.getExtension(x509.KeyUsagesExtension)?.usages, kind.keyUsage);
      const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
      const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
      assert.equal(ski, info.subjectKeyIdHex);
      assert.equal(aki, info.authorityKeyIdHex);
      assert.equal(aki, parseCertificate(kind.parent.certificate.der).subjectKeyIdHex);
      const usages = cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages;
      const eku = usages === undefined ? undefined : [...usages];
      assert.deepEqual(eku, kind.ca ? undefined : ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
      assert.equal(cert.serialNumber, kind.cert.serialHex);
      assert.equal(info.serialHex, kind.cert.serialHex);
      assert.equal(info.fingerprint, fingerprint(kind.cert.der));
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
      assert.equal(san?.critical, kind.san === undefined ? undefined : kind.subject === undefined);
      const sanTypes = (san?.names.toJSON() ?? []).map((n) => `${n.type}:${n.value}`);
      const expected = [
        ...(info.spiffeId ? [`url:${info.spiffeId}`] : []),
        ...info.dnsNames.map((d) => `dns:${d}`),
        ...info.ipAddresses.map((ip) => `ip:${ip}`),
      ];
      assert.deepEqual(sanTypes, expected);
    });
  }
});

describe("issuance details", () => {
  test("parseCertificate reads back names, SANs and key", () => {
    const kind = kinds[3];
    assert.ok(kind);
    const info = parseCertificate(kind.cert.der);
    assert.equal(info.subjectCommonName, "trellis-webhook");
    assert.equal(info.issuerCommonName, "Trellis Issuer");
    assert.deepEqual(info.dnsNames, ["trellis-webhook.trellis-system.svc", "localhost"]);
    assert.deepEqual(info.ipAddresses, ["127.0.0.1", "::1", "fd00:10::2a"]);
    assert.equal(info.spiffeId, undefined);
    assert.ok(info.publicKey.equals(leafKeys.publicKey));
  });

  test("serials are 16 random bytes, positive, and distinct", () => {
    const serials = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const { serialHex } = issueLeaf({
        publicKey: leafKeys.publicKey,
        signer: mid.signer,
        spiffeId,
        notAfter: fromNow(HOUR),
      });
      assert.match(serialHex, /^[0-7][0-9a-f]{31}$/);
      assert.notEqual(serialHex.slice(0, 2), "00");
      serials.add(serialHex);
    }
    assert.equal(serials.size, 500);
  });

  test("validity: whole seconds, 60 s backdating by default, capped at the signer's notAfter", () => {
    const before = Date.now();
    const leaf = issueLeaf({
      publicKey: leafKeys.publicKey,
      signer: mid.signer,
      spiffeId,
      notAfter: new Date(before + DAY + 123),
    });
    assert.equal(leaf.notAfter.getTime() % 1000, 0);
    assert.ok(leaf.notBefore.getTime() <= before - 59_000 && leaf.notBefore.getTime() >= before - 61_000);
    const long = issueLeaf({
      publicKey: leafKeys.publicKey,
      signer: mid.signer,
      spiffeId,
      notAfter: fromNow(400 * DAY),
    });
    assert.equal(long.notAfter.getTime(), mid.certificate.notAfter.getTime());
    assert.equal(
      new Date(new X509Certificate(long.pem).validTo).getTime(),
      mid.certificate.notAfter.getTime(),
    );
  });

  test("UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)", () => {
    const cases = [
      { notAfter: new Date("2049-12-31T23:59:59Z"), asn1: "UTCTIME", text: "491231235959Z" },
      { notAfter: new Date("2050-01-01T00:00:00Z"), asn1: "GENERALIZEDTIME", text: "20500101000000Z" },
      { notAfter: new Date("2070-06-30T12:00:00Z"), asn1: "GENERALIZEDTIME", text: "20700630120000Z" },
    ];
    for (const c of cases) {
      const anchor = trustAnchor("Long Lived Root", { notAfter: c.notAfter });
      const dump = opensslOrThrow(["asn1parse", "-inform", "DER", "-in", "c.der"], {
        "c.der": anchor.certificate.der,
      });
      assert.match(dump, new RegExp(`${c.asn1}\\s+:${c.text}`));
      assert.equal(
        new Date(new X509Certificate(anchor.certificate.pem).validTo).getTime(),
        c.notAfter.getTime(),
      );
      assert.equal(parseCertificate(anchor.certificate.der).notAfter.getTime(), c.notAfter.getTime());
    }
  });

  test("openssl parses every certificate without complaint", () => {
    for (const kind of kinds) {
      const result = openssl(["x509", "-in", "c.pem", "-noout", "-text"], { "c.pem": kind.cert.pem });
      assert.ok(result.ok, result.output);
    }
  });
});

describe("issuance refuses bad input", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const expired = trustAnchor("Expired Root", { notBefore: fromNow(-10 * DAY), notAfter: fromNow(-DAY) });
  const base = { publicKey: leafKeys.publicKey, signer: mid.signer, notAfter: fromNow(DAY) };
  const cases: Array<{ name: string; run: () => unknown; code: string }> = [
    {
      name: "malformed SPIFFE ID",
      run: () => issueLeaf({ ...base, spiffeId: "spiffe://td/ns/../sa" }),
      code: "InvalidSpiffeId",
    },
    {
      name: "non-SPIFFE URI",
      run: () => issueLeaf({ ...base, spiffeId: "https://example.com/x" }),
      code: "InvalidSpiffeId",
    },
    {
      name: "bad DNS name",
      run: () => issueLeaf({ ...base, dnsNames: ["under_score.svc"] }),
      code: "InvalidDnsName",
    },
    {
      name: "bad IP address",
      run: () => issueLeaf({ ...base, ipAddresses: ["127.0.0.256"] }),
      code: "InvalidIpAddress",
    },
    {
      name: "no SAN at all",
      run: () => issueLeaf({ ...base, commonName: "only-a-cn" }),
      code: "MissingSubjectAltName",
    },
    {
      name: "notAfter before notBefore",
      run: () => issueLeaf({ ...base, spiffeId, notAfter: fromNow(-HOUR) }),
      code: "InvalidValidity",
    },
    {
      name: "invalid Date",
      run: () => issueLeaf({ ...base, spiffeId, notAfter: new Date(Number.NaN) }),
      code: "InvalidValidity",
    },
    {
      name: "signer is a leaf",
      run: () =>
        issueLeaf({
          ...base,
          spiffeId,
          signer: { certificateDer: kinds[2]?.cert.der ?? Buffer.alloc(0), privateKey: leafKeys.privateKey },
        }),
      code: "SignerNotCa",
    },
    {
      name: "issuer (pathLen 0) signing a CA",
      run: () => issuer("Too Deep", mid),
      code: "SignerPathLenExceeded",
    },
    {
      name: "signer key does not match",
      run: () =>
        issueLeaf({
          ...base,
          spiffeId,
          signer: { certificateDer: mid.certificate.der, privateKey: root.keys.privateKey },
        }),
      code: "KeyMismatch",
    },
    {
      name: "expired signer",
      run: () => issueLeaf({ ...base, spiffeId, signer: expired.signer }),
      code: "SignerExpired",
    },
    {
      name: "RSA subject key",
      run: () => issueLeaf({ ...base, spiffeId, publicKey: rsa.publicKey }),
      code: "UnsupportedKey",
    },
    {
      name: "private key as subject key",
      run: () => issueLeaf({ ...base, spiffeId, publicKey: leafKeys.privateKey }),
      code: "UnsupportedKey",
    },
    {
      name: "RSA signer key",
      run: () =>
        issueLeaf({
          ...base,
          spiffeId,
          signer: { certificateDer: mid.certificate.der, privateKey: rsa.privateKey },
        }),
      code: "UnsupportedKey",
    },
    {
      name: "common name too long",
      run: () => issueLeaf({ ...base, spiffeId, commonName: "x".repeat(65) }),
      code: "InvalidCommonName",
    },
    {
      name: "garbage signer certificate",
      run: () =>
        issueLeaf({
          ...base,
          spiffeId,
          signer: { certificateDer: Buffer.from("nope"), privateKey: mid.keys.privateKey },
        }),
      code: "MalformedCertificate",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(c.run, (error: unknown) => error instanceof PkiError && error.code === c.code);
    });
  }
});
