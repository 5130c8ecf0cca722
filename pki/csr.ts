// PKCS#10 certificate signing requests (RFC 2986): creating one for a P-256 key pair, and parsing
// one with its proof-of-possession signature checked. Parsing is the entry point for hostile bytes
// (anything a workload sends the identity service), so structure and names are checked before the
// costly key import and signature verification, and every failure is a PkiError.

import { type KeyObject, sign, verify } from "node:crypto";
import { DerReader, readSmallInteger, readWholeBytes, type Tlv, tlvEquals } from "./der-decode.ts";
import { bitString, contextConstructedTag, sequence, set, smallInteger, TAG, tlv } from "./der-encode.ts";
import { PkiError } from "./errors.ts";
import { assertKeyMatches, importP256Spki, type KeyPair, p256Spki } from "./keys.ts";
import { ECDSA_WITH_SHA256, OID } from "./oids.ts";
import { labelledPemBlocks, toPem } from "./pem.ts";
import { validateSpiffeId } from "./spiffe.ts";
import { type AltNames, encodeGeneralNames, validateDnsName } from "./subject-alt-names.ts";
import { decodeExtensions, extension } from "./x509-extensions.ts";
import { encodeName, readCommonName } from "./x509-name.ts";

const CODE = "MalformedCsr";
const ATTRIBUTES_TAG = contextConstructedTag(0);
const CSR_LABELS = new Set(["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"]);

export interface CertificateRequest {
  publicKey: KeyObject;
  commonName?: string;
  spiffeId?: string;
  dnsNames: string[];
  der: Buffer;
}

function extensionRequest(o: { commonName?: string; spiffeId?: string; dnsNames?: string[] }): Buffer[] {
  const uris: string[] = [];
  if (o.spiffeId !== undefined) {
    validateSpiffeId(o.spiffeId);
    uris.push(o.spiffeId);
  }
  const dnsNames = o.dnsNames ?? [];
  for (const name of dnsNames) validateDnsName(name);
  if (uris.length + dnsNames.length === 0) return [];
  const san = extension(
    OID.subjectAltName,
    o.commonName === undefined,
    encodeGeneralNames({ uris, dnsNames, ipAddresses: [] }, []),
  );
  return [sequence(OID.extensionRequest, set(sequence(san)))];
}

export function createCsr(o: {
  keyPair: KeyPair;
  commonName?: string;
  spiffeId?: string;
  dnsNames?: string[];
}): {
  der: Buffer;
  pem: string;
} {
  const spki = p256Spki(o.keyPair.publicKey);
  assertKeyMatches(spki, o.keyPair.privateKey);
  const info = sequence(
    smallInteger(0),
    encodeName(o.commonName),
    spki,
    tlv(ATTRIBUTES_TAG, ...extensionRequest(o)),
  );
  const der = sequence(info, ECDSA_WITH_SHA256, bitString(sign("sha256", info, o.keyPair.privateKey)));
  return { der, pem: toPem("CERTIFICATE REQUEST", der) };
}

/**
 * The DER of a CSR given as DER, or as PEM text (a string or its bytes). PEM may have text before
 * and after its block (RFC 7468 §2; OpenSSL and Go skip it too), whichever way it is given.
 */
function csrDer(input: Buffer | string): Buffer {
  // DER starts with 0x30 (SEQUENCE); anything else can only be PEM text.
  if (typeof input !== "string" && input[0] === 0x30) return input;
  const text = typeof input === "string" ? input : input.toString("latin1");
  if (!text.includes("-----BEGIN ")) {
    throw new PkiError(CODE, "expected a DER CSR (a SEQUENCE) or a PEM CERTIFICATE REQUEST block");
  }
  let blocks: Buffer[];
  try {
    blocks = labelledPemBlocks(text)
      .filter((block) => CSR_LABELS.has(block.label))
      .map((block) => block.der);
  } catch (error) {
    throw new PkiError(CODE, error instanceof PkiError ? error.message : "malformed PEM");
  }
  const [first, ...rest] = blocks;
  if (first === undefined || rest.length > 0) {
    throw new PkiError(CODE, "expected exactly one CERTIFICATE REQUEST PEM block");
  }
  return first;
}

function readRequestedNames(buf: Buffer, attributes: Tlv): AltNames {
  const reader = DerReader.inside(buf, attributes, CODE);
  let names: AltNames = { uris: [], dnsNames: [], ipAddresses: [] };
  let extensionRequests = 0;
  while (!reader.atEnd()) {
    const attribute = DerReader.inside(buf, reader.next(TAG.sequence), CODE);
    const type = attribute.next(TAG.oid);
    const values = attribute.next(TAG.set);
    attribute.finish();
    if (!tlvEquals(buf, type, OID.extensionRequest)) continue;
    // OpenSSL reads the first, we would read the last, Go refuses: two can only mislead.
    if (++extensionRequests > 1) throw new PkiError(CODE, "a CSR may carry one extensionRequest attribute");
    const inner = DerReader.inside(buf, values, CODE);
    names = decodeExtensions(buf, inner.next(TAG.sequence), CODE).altNames;
    inner.finish();
  }
  return names;
}

/**
 * Parses a DER or PEM CSR and checks its signature with the key it carries. Only ECDSA P-256 with
 * SHA-256 is accepted; a URI SAN, when present, must be a single well-formed SPIFFE ID. iPAddress
 * and other SAN forms are not returned: the identity a certificate gets comes from the caller.
 */
export function parseCsr(input: Buffer | string): CertificateRequest {
  const der = csrDer(input);
  const outer = DerReader.inside(der, DerReader.single(der, TAG.sequence, CODE), CODE);
  const infoTlv = outer.next(TAG.sequence);
  const algorithm = outer.next(TAG.sequence);
  const signature = readWholeBytes(outer);
  outer.finish();
  if (!tlvEquals(der, algorithm, ECDSA_WITH_SHA256)) {
    throw new PkiError("UnsupportedAlgorithm", "only ecdsa-with-SHA256 CSRs are accepted");
  }
  const info = DerReader.inside(der, infoTlv, CODE);
  if (readSmallInteger(info) !== 0) info.fail("CSR version is not v1 (0)");
  const subject = info.next(TAG.sequence);
  const spki = info.next(TAG.sequence);
  const names = readRequestedNames(der, info.next(ATTRIBUTES_TAG));
  info.finish();
  const commonName = readCommonName(der, subject, CODE);
  if (names.uris.length > 1) throw new PkiError(CODE, "a CSR may carry at most one URI SAN (its SPIFFE ID)");
  const spiffeId = names.uris[0];
  if (spiffeId !== undefined) validateSpiffeId(spiffeId);

  const publicKey = importP256Spki(der.subarray(spki.start, spki.end), CODE);
  if (!verifySignature(der.subarray(infoTlv.start, infoTlv.end), publicKey, signature)) {
    throw new PkiError("BadCsrSignature", "the CSR signature does not verify with the public key it carries");
  }
  const request: CertificateRequest = { publicKey, dnsNames: names.dnsNames, der };
  if (commonName !== undefined) request.commonName = commonName;
  if (spiffeId !== undefined) request.spiffeId = spiffeId;
  return request;
}

function verifySignature(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify("sha256", data, key, signature);
  } catch {
    return false;
  }
}
