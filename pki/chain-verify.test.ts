// verifyChain against a multi-anchor bundle, each case cross-checked with `openssl verify` on the
// same certificates at the same time, so the two verifiers must agree on accept and reject.

import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, webcrypto } from "node:crypto";
import { describe, test } from "node:test";
import {
  createCsr,
  generateKeyPair,
  type IssuedCertificate,
  issueLeaf,
  parseCsr,
  privateKeyFromPem,
  privateKeyToPem,
  toPem,
  verifyChain,
} from "./index.ts";
import { type Authority, DAY, fromNow, HOUR, issuer, trustAnchor } from "./testing/hierarchy.ts";
import { opensslOrThrow, opensslVerify } from "./testing/openssl-cli.ts";
import { x509 } from "./testing/peculiar-x509.ts";

const spiffeId = "spiffe://cluster.local/ns/shop/sa/checkout";
const oldRoot = trustAnchor("Trellis Root 2025");
const newRoot = trustAnchor("Trellis Root 2026");
const stranger = trustAnchor("Someone Else's Root");
const impostor = trustAnchor("Trellis Root 2026");
const oldIssuer = issuer("Trellis Issuer 2025", oldRoot);
const newIssuer = issuer("Trellis Issuer 2026", newRoot);
const shortRoot = trustAnchor("Short Lived Root", { notAfter: fromNow(2 * DAY) });
const bundle = [oldRoot.certificate.der, newRoot.certificate.der];

function leafOf(
  signer: Authority,
  o: { notBefore?: Date; notAfter?: Date; commonName?: string } = {},
): IssuedCertificate {
  return issueLeaf({
    publicKey: generateKeyPair().publicKey,
    signer: signer.signer,
    spiffeId,
    notAfter: o.notAfter ?? fromNow(DAY),
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
    ...(o.commonName ? { commonName: o.commonName } : {}),
  });
}

async function cryptoKey(key: KeyObject): Promise<webcrypto.CryptoKey> {
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", pkcs8, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
}

/** A certificate made by @peculiar/x509, for shapes pki itself refuses to issue. */
async function foreign(o: {
  issuer: string;
  subject: string;
  signingKey: KeyObject;
  extensions: InstanceType<typeof x509.Extension>[];
  notAfter?: Date;
}) {
  const cert = await x509.X509CertificateGenerator.create({
    issuer: o.issuer,
    subject: o.subject,
    notBefore: fromNow(-HOUR),
    notAfter: o.notAfter ?? fromNow(DAY),
    publicKey: generateKeyPair().publicKey.export({ type: "spki", format: "der" }),
    signingKey: await cryptoKey(o.signingKey),
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: o.extensions,
  });
  return Buffer.from(cert.rawData);
}

function flip(der: Buffer, at: number): Buffer {
  const copy = Buffer.from(der);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

interface Case {
  name: string;
  chain: () => Promise<Buffer[]> | Buffer[];
  anchors?: Buffer[];
  at?: Date;
  expect: string;
  anchor?: IssuedCertificate;
  spiffeId?: string;
  reasonIncludes?: string;
  /** false when openssl would reorder or search, so the comparison says nothing. */
  compareWithOpenssl?: boolean;
}

const leaf = leafOf(newIssuer, { commonName: "checkout" });
const issuerKeys = newIssuer.keys.privateKey;

const cases: Case[] = [
  {
    name: "leaf under the new anchor",
    chain: () => [leaf.der, newIssuer.certificate.der],
    expect: "ok",
    anchor: newRoot.certificate,
    spiffeId,
  },
  {
    name: "leaf under the old anchor",
    chain: () => [leafOf(oldIssuer).der, oldIssuer.certificate.der],
    expect: "ok",
    anchor: oldRoot.certificate,
    spiffeId,
  },
  {
    name: "chain that includes its anchor",
    chain: () => [leaf.der, newIssuer.certificate.der, newRoot.certificate.der],
    expect: "ok",
    anchor: newRoot.certificate,
    spiffeId,
  },
  {
    name: "the issuer on its own",
    chain: () => [newIssuer.certificate.der],
    expect: "ok",
    anchor: newRoot.certificate,
  },
  {
    name: "an unrelated anchor",
    chain: () => [leaf.der, newIssuer.certificate.der],
    anchors: [stranger.certificate.der],
    expect: "UnknownAuthority",
  },
  {
    name: "an anchor with the same name but another key",
    chain: () => [leaf.der, newIssuer.certificate.der],
    anchors: [impostor.certificate.der],
    expect: "UnknownAuthority",
  },
  { name: "missing intermediate", chain: () => [leaf.der], expect: "UnknownAuthority" },
  {
    name: "expired leaf",
    chain: () => [
      leafOf(newIssuer, { notBefore: fromNow(-2 * DAY), notAfter: fromNow(-DAY) }).der,
      newIssuer.certificate.der,
    ],
    expect: "Expired",
  },
  {
    name: "leaf not yet valid",
    chain: () => [leafOf(newIssuer, { notBefore: fromNow(HOUR) }).der, newIssuer.certificate.der],
    expect: "NotYetValid",
  },
  {
    name: "checked after the issuer expired",
    chain: () => [leaf.der, newIssuer.certificate.der],
    at: fromNow(60 * DAY),
    expect: "Expired",
  },
  {
    name: "checked before anything was valid",
    chain: () => [leaf.der, newIssuer.certificate.der],
    at: fromNow(-DAY),
    expect: "NotYetValid",
  },
  {
    name: "checked after the issuer and anchor expired",
    chain: () => [newIssuer.certificate.der],
    at: fromNow(400 * DAY),
    expect: "Expired",
  },
  {
    name: "an anchor that expires before the issuer it signed",
    chain: async () => [
      await foreign({
        issuer: "CN=Short Lived Root",
        subject: "CN=Outliving Issuer",
        signingKey: shortRoot.keys.privateKey,
        extensions: [new x509.BasicConstraintsExtension(true, 0, true)],
        notAfter: fromNow(30 * DAY),
      }),
    ],
    anchors: [shortRoot.certificate.der],
    at: fromNow(3 * DAY),
    expect: "Expired",
    reasonIncludes: "trust anchor",
  },
  {
    name: "tampered leaf signature",
    chain: () => [flip(leaf.der, leaf.der.length - 3), newIssuer.certificate.der],
    expect: "BadSignature",
  },
  {
    name: "tampered leaf SAN",
    chain: () => [flip(leaf.der, leaf.der.indexOf("checkout")), newIssuer.certificate.der],
    expect: "BadSignature",
  },
  {
    name: "tampered issuer",
    chain: () => [leaf.der, flip(newIssuer.certificate.der, newIssuer.certificate.der.length - 3)],
    expect: "BadSignature",
  },
  {
    name: "a leaf used as a CA",
    chain: async () => {
      const holderKeys = generateKeyPair();
      const holder = issueLeaf({
        publicKey: holderKeys.publicKey,
        signer: newIssuer.signer,
        commonName: "holder",
        spiffeId,
        notAfter: fromNow(DAY),
      });
      const signed = await foreign({
        issuer: "CN=holder",
        subject: "CN=victim",
        signingKey: holderKeys.privateKey,
        extensions: [],
      });
      return [signed, holder.der, newIssuer.certificate.der];
    },
    expect: "NotCa",
  },
  {
    name: "an issuer with pathLen 0 above another CA",
    chain: async () => {
      const subCaKeys = generateKeyPair();
      const subCa = await x509.X509CertificateGenerator.create({
        issuer: "CN=Trellis Issuer 2026",
        subject: "CN=Sub CA",
        notBefore: fromNow(-HOUR),
        notAfter: fromNow(DAY),
        publicKey: subCaKeys.publicKey.export({ type: "spki", format: "der" }),
        signingKey: await cryptoKey(issuerKeys),
        signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
        extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
      });
      const below = await foreign({
        issuer: "CN=Sub CA",
        subject: "CN=below",
        signingKey: subCaKeys.privateKey,
        extensions: [],
      });
      return [below, Buffer.from(subCa.rawData), newIssuer.certificate.der];
    },
    expect: "PathLenExceeded",
  },
  {
    name: "an unknown critical extension",
    chain: async () => [
      await foreign({
        issuer: "CN=Trellis Issuer 2026",
        subject: "CN=odd",
        signingKey: issuerKeys,
        extensions: [new x509.Extension("1.3.6.1.4.1.99999.1", true, new Uint8Array([0x05, 0x00]))],
      }),
      newIssuer.certificate.der,
    ],
    expect: "UnhandledCriticalExtension",
  },
  {
    name: "chain in the wrong order",
    chain: () => [newIssuer.certificate.der, leaf.der],
    expect: "NotCa",
    compareWithOpenssl: false,
  },
  {
    name: "bytes that are not a certificate",
    chain: () => [Buffer.from("not a certificate")],
    expect: "MalformedCertificate",
    compareWithOpenssl: false,
  },
  {
    name: "a truncated certificate",
    chain: () => [leaf.der.subarray(0, 100), newIssuer.certificate.der],
    expect: "MalformedCertificate",
    compareWithOpenssl: false,
  },
  { name: "an empty chain", chain: () => [], expect: "NoCertificates", compareWithOpenssl: false },
  {
    name: "an empty bundle",
    chain: () => [leaf.der],
    anchors: [],
    expect: "NoAnchors",
    compareWithOpenssl: false,
  },
];

describe("verifyChain agrees with openssl verify", () => {
  for (const c of cases) {
    test(c.name, async () => {
      const chain = await c.chain();
      const anchors = c.anchors ?? bundle;
      const result = verifyChain(chain, anchors, c.at);
      if (c.expect === "ok") {
        const expected = { ok: true, anchorFingerprint: c.anchor?.fingerprint };
        assert.deepEqual(result, c.spiffeId === undefined ? expected : { ...expected, spiffeId: c.spiffeId });
      } else {
        assert.equal(result.ok, false);
        const reason = result.ok ? "" : result.reason;
        assert.ok(reason.startsWith(`${c.expect}: `) && reason.includes(c.reasonIncludes ?? ""), reason);
      }
      if (c.compareWithOpenssl === false || chain[0] === undefined) return;
      const openssl = opensslVerify({
        leafPem: toPem("CERTIFICATE", chain[0]),
        anchorsPem: anchors.map((der) => toPem("CERTIFICATE", der)).join(""),
        ...(chain.length > 1
          ? {
              untrustedPem: chain
                .slice(1)
                .map((der) => toPem("CERTIFICATE", der))
                .join(""),
            }
          : {}),
        at: c.at ?? new Date(),
      });
      assert.equal(openssl.ok, c.expect === "ok", openssl.output);
    });
  }
});

describe("anchors and issuers made by openssl", () => {
  const issuerExtensions = [
    "basicConstraints=critical,CA:TRUE,pathlen:0",
    "keyUsage=critical,keyCertSign,cRLSign",
    "subjectKeyIdentifier=hash",
    "authorityKeyIdentifier=keyid",
  ].join("\n");

  test("an openssl RSA root signs a Trellis issuer CSR; Trellis leaves verify against it", () => {
    const rootKey = pkcs8Pem(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
    const root = opensslOrThrow(
      [..."req -x509 -key root.key -subj /CN=Corporate-RSA-Root -days 30".split(" "), ...CA_EXTENSIONS],
      { "root.key": rootKey },
    );
    const issuerKeys = generateKeyPair();
    const csr = createCsr({ keyPair: issuerKeys, commonName: "Trellis Issuer via RSA" });
    const signed = opensslOrThrow(
      "x509 -req -in issuer.csr -CA root.pem -CAkey root.key -CAcreateserial -days 10 -extfile ext.cnf".split(
        " ",
      ),
      { "issuer.csr": csr.pem, "root.pem": root, "root.key": rootKey, "ext.cnf": issuerExtensions },
    );
    const rootDer = opensslDer(root);
    const issuerDer = opensslDer(signed);
    const signer = { certificateDer: issuerDer, privateKey: issuerKeys.privateKey };
    const request = parseCsr(createCsr({ keyPair: generateKeyPair(), spiffeId }).der);
    const leafCert = issueLeaf({ publicKey: request.publicKey, signer, spiffeId, notAfter: fromNow(DAY) });
    const result = verifyChain([leafCert.der, issuerDer], [oldRoot.certificate.der, rootDer]);
    assert.equal(result.ok, true, !result.ok ? result.reason : "");
    const untrustedPem = toPem("CERTIFICATE", issuerDer);
    assert.ok(opensslVerify({ leafPem: leafCert.pem, anchorsPem: root, untrustedPem }).ok);
  });

  test("an openssl EC root and key act as a Trellis signer", () => {
    const keyPem = opensslOrThrow("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256".split(" "));
    const rootPem = opensslOrThrow(
      [..."req -x509 -key k.pem -subj /CN=OpenSSL-EC-Root -days 30".split(" "), ...CA_EXTENSIONS],
      { "k.pem": keyPem },
    );
    const rootDer = opensslDer(rootPem);
    const signer = { certificateDer: rootDer, privateKey: privateKeyFromPem(keyPem) };
    const leafCert = issueLeaf({
      publicKey: generateKeyPair().publicKey,
      signer,
      spiffeId,
      notAfter: fromNow(DAY),
    });
    assert.equal(verifyChain([leafCert.der], [rootDer]).ok, true);
    assert.ok(opensslVerify({ leafPem: leafCert.pem, anchorsPem: rootPem }).ok);
    assert.ok(privateKeyToPem(signer.privateKey).startsWith("-----BEGIN PRIVATE KEY-----\n"));
  });
});

const CA_EXTENSIONS = [
  "-addext",
  "basicConstraints=critical,CA:TRUE",
  "-addext",
  "keyUsage=critical,keyCertSign,cRLSign",
];

function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

function opensslDer(pem: string): Buffer {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem);
  assert.ok(match, "openssl printed a certificate");
  return Buffer.from(match[0].replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
}
