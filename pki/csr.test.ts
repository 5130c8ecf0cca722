// CSRs: what createCsr writes is accepted by openssl and @peculiar/x509; parseCsr reads CSRs from
// those tools too, and rejects tampered, foreign-algorithm and malformed input with a PkiError.

import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { describe, test } from "node:test";
import { DerReader } from "./der-decode.ts";
import { bitString, contextConstructedTag, sequence, TAG, tlv } from "./der-encode.ts";
import { createCsr, generateKeyPair, PkiError, parseCsr, privateKeyToPem } from "./index.ts";
import { ECDSA_WITH_SHA256 } from "./oids.ts";
import { opensslOrThrow } from "./testing/openssl-cli.ts";
import { x509 } from "./testing/peculiar-x509.ts";

const keys = generateKeyPair();
const spiffeId = "spiffe://cluster.local/ns/shop/sa/checkout";
const keyPem = privateKeyToPem(keys.privateKey);

function opensslCsr(
  subjectAltName: string | undefined,
  keyFile = keyPem,
  subject = "/CN=from-openssl",
): string {
  const args = ["req", "-new", "-key", "k.pem", "-subj", subject];
  if (subjectAltName !== undefined) args.push("-addext", `subjectAltName=${subjectAltName}`);
  return opensslOrThrow(args, { "k.pem": keyFile });
}

function isPkiError(code: string) {
  return (error: unknown) => error instanceof PkiError && error.code === code;
}

describe("createCsr, checked by openssl and @peculiar/x509", () => {
  const cases = [
    { name: "SPIFFE ID only", input: { spiffeId }, san: [`url:${spiffeId}`] },
    {
      name: "DNS names only",
      input: { dnsNames: ["a.shop.svc", "b.shop.svc"] },
      san: ["dns:a.shop.svc", "dns:b.shop.svc"],
    },
    {
      name: "CN, SPIFFE ID and DNS",
      input: { commonName: "checkout", spiffeId, dnsNames: ["c.shop"] },
      san: [`url:${spiffeId}`, "dns:c.shop"],
    },
    { name: "no names at all", input: {}, san: [] },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const csr = createCsr({ keyPair: keys, ...c.input });
      const verified = opensslOrThrow(["req", "-in", "r.pem", "-verify", "-noout"], { "r.pem": csr.pem });
      assert.equal(verified, "");
      const peculiar = new x509.Pkcs10CertificateRequest(csr.der);
      assert.ok(await peculiar.verify());
      const ext = peculiar.getExtension("2.5.29.17");
      const san = ext instanceof x509.SubjectAlternativeNameExtension ? ext : undefined;
      assert.deepEqual(
        (san?.names.toJSON() ?? []).map((n) => `${n.type}:${n.value}`),
        c.san,
      );
      const parsed = parseCsr(csr.der);
      assert.ok(parsed.publicKey.equals(keys.publicKey));
      assert.equal(parsed.commonName, c.input.commonName);
      assert.equal(parsed.spiffeId, c.input.spiffeId);
      assert.deepEqual(parsed.dnsNames, c.input.dnsNames ?? []);
    });
  }
});

describe("parseCsr accepts", () => {
  const ours = createCsr({ keyPair: keys, spiffeId });
  const inputs: Array<{
    name: string;
    input: () => Buffer | string;
    spiffeId?: string;
    commonName?: string;
  }> = [
    { name: "DER", input: () => ours.der, spiffeId },
    { name: "PEM string", input: () => ours.pem, spiffeId },
    { name: "PEM bytes", input: () => Buffer.from(ours.pem), spiffeId },
    {
      name: 'legacy "NEW CERTIFICATE REQUEST" label',
      input: () => ours.pem.replaceAll("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"),
      spiffeId,
    },
    { name: "PEM with surrounding text", input: () => `# request for checkout\n${ours.pem}\n`, spiffeId },
    {
      name: "PEM bytes with surrounding text, as the same text as a string",
      input: () => Buffer.from(`# request for checkout\n${ours.pem}\n`),
      spiffeId,
    },
    {
      name: "a CSR made by openssl",
      input: () => opensslCsr(`URI:${spiffeId},DNS:x.shop`),
      spiffeId,
      commonName: "from-openssl",
    },
    {
      name: "an openssl CSR without extensions",
      input: () => opensslCsr(undefined),
      commonName: "from-openssl",
    },
  ];
  for (const c of inputs) {
    test(c.name, () => {
      const parsed = parseCsr(c.input());
      assert.ok(parsed.publicKey.equals(keys.publicKey));
      assert.equal(parsed.spiffeId, c.spiffeId);
      assert.equal(parsed.commonName, c.commonName);
    });
  }

  test("a CSR made by @peculiar/x509", async () => {
    const cryptoKeys = await x509.cryptoProvider
      .get()
      .subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    const request = await x509.Pkcs10CertificateRequestGenerator.create({
      name: "CN=from-peculiar",
      keys: cryptoKeys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: spiffeId }])],
    });
    const parsed = parseCsr(Buffer.from(request.rawData));
    assert.equal(parsed.commonName, "from-peculiar");
    assert.equal(parsed.spiffeId, spiffeId);
  });
});

function pkcs8Pem(key: KeyObject): string {
  return key.export({ type: "pkcs8", format: "pem" }).toString();
}

/** The same CertificationRequestInfo, signed by a different key. */
function resign(der: Buffer, key: KeyObject): Buffer {
  const outer = DerReader.inside(der, DerReader.single(der, TAG.sequence, "MalformedCsr"), "MalformedCsr");
  const info = outer.next(TAG.sequence);
  const infoBytes = der.subarray(info.start, info.end);
  return sequence(infoBytes, ECDSA_WITH_SHA256, bitString(sign("sha256", infoBytes, key)));
}

/** A CSR whose attributes are `a`'s extensionRequest followed by `b`'s, signed by `key`. */
function twoExtensionRequests(a: Buffer, b: Buffer, key: KeyObject): Buffer {
  const parts = (der: Buffer) => {
    const outer = DerReader.inside(der, DerReader.single(der, TAG.sequence, "MalformedCsr"), "MalformedCsr");
    const info = DerReader.inside(der, outer.next(TAG.sequence), "MalformedCsr");
    const version = info.next(TAG.integer);
    const subject = info.next(TAG.sequence);
    const spki = info.next(TAG.sequence);
    const attributes = info.next(contextConstructedTag(0));
    const bytes = (t: { start: number; end: number }) => der.subarray(t.start, t.end);
    const inner = DerReader.inside(der, attributes, "MalformedCsr");
    return {
      head: [bytes(version), bytes(subject), bytes(spki)],
      attribute: bytes(inner.next(TAG.sequence)),
    };
  };
  const first = parts(a);
  const info = sequence(...first.head, tlv(contextConstructedTag(0), first.attribute, parts(b).attribute));
  return sequence(info, ECDSA_WITH_SHA256, bitString(sign("sha256", info, key)));
}

function tamper(der: Buffer, at: number): Buffer {
  const copy = Buffer.from(der);
  copy[at] = (copy[at] ?? 0) ^ 0x01;
  return copy;
}

describe("parseCsr rejects", () => {
  const csr = createCsr({ keyPair: keys, spiffeId, dnsNames: ["checkout.shop.svc"] });
  const other = generateKeyPair();
  const rsaKey = pkcs8Pem(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
  const p384Key = pkcs8Pem(generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey);
  const cases: Array<{ name: string; input: () => Buffer | string; code: string }> = [
    {
      name: "a flipped bit in the signature",
      input: () => tamper(csr.der, csr.der.length - 5),
      code: "BadCsrSignature",
    },
    {
      name: "a changed DNS name",
      input: () => tamper(csr.der, csr.der.indexOf("checkout.shop")),
      code: "BadCsrSignature",
    },
    {
      name: "a changed public key",
      input: () => tamper(csr.der, csr.der.indexOf(Buffer.from([0x03, 0x42, 0x00, 0x04])) + 20),
      code: "MalformedCsr",
    },
    {
      name: "a signature by another key",
      input: () => resign(csr.der, other.privateKey),
      code: "BadCsrSignature",
    },
    { name: "an RSA CSR", input: () => opensslCsr(undefined, rsaKey), code: "UnsupportedAlgorithm" },
    { name: "a P-384 key", input: () => opensslCsr(undefined, p384Key), code: "UnsupportedKey" },
    {
      name: "two URI SANs",
      input: () => opensslCsr(`URI:${spiffeId},URI:spiffe://cluster.local/ns/x/sa/y`),
      code: "MalformedCsr",
    },
    {
      name: "a non-SPIFFE URI SAN",
      input: () => opensslCsr("URI:https://example.com/x"),
      code: "InvalidSpiffeId",
    },
    { name: "empty input", input: () => Buffer.alloc(0), code: "MalformedCsr" },
    { name: "text that is not PEM", input: () => "hello", code: "MalformedCsr" },
    { name: "a trailing byte", input: () => Buffer.concat([csr.der, Buffer.of(0)]), code: "MalformedCsr" },
    { name: "two PEM blocks", input: () => csr.pem + csr.pem, code: "MalformedCsr" },
    {
      name: "a certificate PEM",
      input: () => csr.pem.replaceAll("CERTIFICATE REQUEST", "CERTIFICATE"),
      code: "MalformedCsr",
    },
    {
      name: "PEM with a broken body",
      input: () => csr.pem.replace(/\n[A-Za-z]/, "\n!"),
      code: "MalformedCsr",
    },
    {
      name: "two extensionRequest attributes (OpenSSL reads the first, Go refuses)",
      input: () =>
        twoExtensionRequests(
          createCsr({ keyPair: keys, spiffeId: "spiffe://cluster.local/ns/shop/sa/harmless" }).der,
          csr.der,
          keys.privateKey,
        ),
      code: "MalformedCsr",
    },
    { name: "bytes that are neither DER nor PEM", input: () => Buffer.from("hello"), code: "MalformedCsr" },
    {
      name: "an indefinite length",
      input: () => Buffer.concat([Buffer.of(0x30, 0x80), csr.der.subarray(3), Buffer.of(0, 0)]),
      code: "MalformedCsr",
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.throws(() => parseCsr(c.input()), isPkiError(c.code));
    });
  }

  test("says what it expected of input that is neither DER nor PEM, given as bytes or as text", () => {
    for (const input of [Buffer.from("hello"), "hello"]) {
      assert.throws(
        () => parseCsr(input),
        /expected a DER CSR \(a SEQUENCE\) or a PEM CERTIFICATE REQUEST block/,
      );
    }
  });

  test("every truncation of a CSR, without crashing", () => {
    for (let length = 0; length < csr.der.length; length++) {
      assert.throws(
        () => parseCsr(csr.der.subarray(0, length)),
        isPkiError("MalformedCsr"),
        `length ${length}`,
      );
    }
  });

  test("random corruption yields a PkiError or a valid parse, never another error", () => {
    let seed = 0x5eed;
    const next = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const bytes = Buffer.from(csr.der);
      for (let flips = 1 + (next() % 3); flips > 0; flips--) bytes[next() % bytes.length] = next() & 0xff;
      try {
        parseCsr(bytes);
        outcomes.set("parsed", (outcomes.get("parsed") ?? 0) + 1);
      } catch (error) {
        assert.ok(error instanceof PkiError, `iteration ${i}: ${String(error)}`);
        outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1);
      }
    }
    assert.ok((outcomes.get("BadCsrSignature") ?? 0) > 0 && (outcomes.get("MalformedCsr") ?? 0) > 0);
  });
});
