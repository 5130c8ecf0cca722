// Issuing certificates: the self-signed trust anchor, the intermediate issuer (pathLen 0) and
// workload/serving leaves. Every certificate is ECDSA P-256 with SHA-256, has a random 16-byte
// serial, SubjectKeyIdentifier and AuthorityKeyIdentifier. A certificate never outlives its
// signer: notAfter is capped at the signer's notAfter and the returned dates say what was encoded.
// Signers are decoded and their key checked once, then remembered per certificate Buffer.

import { type KeyObject, sign } from "node:crypto";
import { decodeCertificate } from "./certificate-decode.ts";
import { fingerprint } from "./certificate-info.ts";
import { CertificateRequest } from "./csr.ts";
import { contextConstructedTag, putHeader, smallInteger, TAG, tlv, tlvSize } from "./der-encode.ts";
import { PkiError } from "./errors.ts";
import { assertKeyMatches, type KeyPair, keyIdentifier, p256Spki } from "./keys.ts";
import { ECDSA_WITH_SHA256 } from "./oids.ts";
import { toPem } from "./pem.ts";
import { SERIAL_DER_SIZE, serialHexAt, writeRandomSerial } from "./serial-number.ts";
import { validateSpiffeId } from "./spiffe.ts";
import { ipToBytes, validateDnsName } from "./subject-alt-names.ts";
import {
  authorityKeyIdExtension,
  CA_KEY_USAGE,
  caBasicConstraints,
  KEY_USAGE,
  LEAF_BASIC_CONSTRAINTS,
  LEAF_KEY_USAGE,
  SERVER_AND_CLIENT_AUTH,
  SUBJECT_KEY_ID_PREFIX,
  subjectAltNameExtension,
  subjectKeyIdExtension,
} from "./x509-extensions.ts";
import { encodeName } from "./x509-name.ts";
import { toWholeSeconds, validitySize, writeValidity } from "./x509-time.ts";

export interface Signer {
  certificateDer: Buffer;
  privateKey: KeyObject;
}

export interface IssuedCertificate {
  readonly der: Buffer;
  readonly pem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly fingerprint: string;
  readonly serialHex: string;
}

/** Default backdating of notBefore, so peers whose clocks run a little behind accept a new certificate. */
const CLOCK_SKEW_MS = 60_000;
const VERSION_3 = tlv(contextConstructedTag(0), smallInteger(2));
const EXTENSIONS_TAG = contextConstructedTag(3);

interface SignerContext {
  spki: Buffer;
  /** signature AlgorithmIdentifier ‖ issuer Name: adjacent in every TBSCertificate this signer makes. */
  algorithmAndIssuer: Buffer;
  authorityKeyId: Buffer;
  /** The extensions every leaf of this signer carries, pre-encoded: constraints, usages, AKI. */
  leafExtensions: Buffer;
  notAfter: Date;
  pathLen?: number;
  checkedKey?: KeyObject;
}

const signerContexts = new WeakMap<Buffer, SignerContext>();

function loadSigner(der: Buffer): SignerContext {
  const cert = decodeCertificate(der);
  const ext = cert.extensions;
  const canSign = ext.keyUsage === undefined || (ext.keyUsage & (1 << KEY_USAGE.keyCertSign)) !== 0;
  if (!ext.isCa || !canSign)
    throw new PkiError("SignerNotCa", "the signer certificate is not a CA allowed to sign");
  const authorityKeyId = authorityKeyIdExtension(ext.subjectKeyId ?? keyIdentifier(cert.spki));
  const context: SignerContext = {
    spki: Buffer.from(cert.spki),
    algorithmAndIssuer: Buffer.concat([ECDSA_WITH_SHA256, cert.subjectName]),
    authorityKeyId,
    leafExtensions: Buffer.concat([
      LEAF_BASIC_CONSTRAINTS,
      LEAF_KEY_USAGE,
      SERVER_AND_CLIENT_AUTH,
      authorityKeyId,
    ]),
    notAfter: cert.notAfter,
  };
  if (ext.pathLen !== undefined) context.pathLen = ext.pathLen;
  return context;
}

function signerContext(signer: Signer): SignerContext {
  let context = signerContexts.get(signer.certificateDer);
  if (context === undefined) {
    context = loadSigner(signer.certificateDer);
    signerContexts.set(signer.certificateDer, context);
  }
  if (context.checkedKey !== signer.privateKey) {
    assertKeyMatches(context.spki, signer.privateKey);
    context.checkedKey = signer.privateKey;
  }
  return context;
}

function validity(
  notBefore: Date | undefined,
  notAfter: Date,
  cap?: Date,
): { notBefore: Date; notAfter: Date } {
  const start = toWholeSeconds(notBefore ?? new Date(Date.now() - CLOCK_SKEW_MS));
  let end = toWholeSeconds(notAfter);
  if (cap !== undefined && end.getTime() > cap.getTime()) end = cap;
  if (end.getTime() <= start.getTime()) {
    const capped = cap !== undefined && end === cap;
    throw new PkiError(
      capped ? "SignerExpired" : "InvalidValidity",
      capped
        ? `the signer expires at ${cap.toISOString()}, before the requested notBefore`
        : "notAfter must be later than notBefore",
    );
  }
  return { notBefore: start, notAfter: end };
}

interface TbsFields {
  algorithmAndIssuer: Buffer;
  subjectName: Buffer;
  spki: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** The Extensions SEQUENCE's content, in parts (whole extensions, or pieces of one, in order). */
  extensions: Buffer[];
}

/** The signature's BIT STRING at its longest: a DER ECDSA P-256 signature is at most 72 bytes. */
const MAX_SIGNATURE_BITS = tlvSize(1 + 72);

/**
 * Writes the TBSCertificate and then the Certificate around it into one Buffer — every size is
 * known before the first byte, the signer's fixed parts (algorithm, issuer name, the leaves'
 * constant extensions) are copied as they were encoded once — and signs the TBS where it lies.
 */
function signCertificate(fields: TbsFields, privateKey: KeyObject): IssuedCertificate {
  let extensionsLength = 0;
  for (const extension of fields.extensions) extensionsLength += extension.length;
  const extensionsSequence = tlvSize(extensionsLength);
  const tbsLength =
    VERSION_3.length +
    SERIAL_DER_SIZE +
    fields.algorithmAndIssuer.length +
    validitySize(fields.notBefore, fields.notAfter) +
    fields.subjectName.length +
    fields.spki.length +
    tlvSize(extensionsSequence);
  const tbsSize = tlvSize(tbsLength);
  const longest = tbsSize + ECDSA_WITH_SHA256.length + MAX_SIGNATURE_BITS;
  // Room for the Certificate's header as the longest signature would need it; a shorter one may
  // need a shorter header, written closer to the TBS (the DER then starts a byte or two later).
  const headerRoom = tlvSize(longest) - longest;
  const out = Buffer.allocUnsafe(headerRoom + longest);
  let p = putHeader(out, headerRoom, TAG.sequence, tbsLength);
  p = copyInto(out, p, VERSION_3);
  const serialAt = p;
  p = writeRandomSerial(out, p);
  p = copyInto(out, p, fields.algorithmAndIssuer);
  p = writeValidity(out, p, fields.notBefore, fields.notAfter);
  p = copyInto(out, p, fields.subjectName);
  p = copyInto(out, p, fields.spki);
  p = putHeader(out, p, EXTENSIONS_TAG, extensionsSequence);
  p = putHeader(out, p, TAG.sequence, extensionsLength);
  for (const extension of fields.extensions) p = copyInto(out, p, extension);
  const signature = sign("sha256", out.subarray(headerRoom, p), privateKey);
  const length = tbsSize + ECDSA_WITH_SHA256.length + tlvSize(1 + signature.length);
  const start = headerRoom - (tlvSize(length) - length);
  putHeader(out, start, TAG.sequence, length);
  p = copyInto(out, p, ECDSA_WITH_SHA256);
  p = putHeader(out, p, TAG.bitString, 1 + signature.length);
  out[p++] = 0;
  p = copyInto(out, p, signature);
  return new Issued(out.subarray(start, p), serialAt - start, fields);
}

function copyInto(out: Buffer, offset: number, part: Buffer): number {
  out.set(part, offset);
  return offset + part.length;
}

/** The PEM, fingerprint and serial text are made when first read: the identity service needs only the PEM. */
class Issued implements IssuedCertificate {
  readonly der: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly #serialOffset: number;
  #pem: string | undefined;
  #fingerprint: string | undefined;

  constructor(der: Buffer, serialOffset: number, window: { notBefore: Date; notAfter: Date }) {
    this.der = der;
    this.notBefore = window.notBefore;
    this.notAfter = window.notAfter;
    this.#serialOffset = serialOffset;
  }

  get pem(): string {
    this.#pem ??= toPem("CERTIFICATE", this.der);
    return this.#pem;
  }

  get fingerprint(): string {
    this.#fingerprint ??= fingerprint(this.der);
    return this.#fingerprint;
  }

  get serialHex(): string {
    return serialHexAt(this.der, this.#serialOffset);
  }
}

/** Self-signed root: CA without a path length limit, keyCertSign + cRLSign. */
export function createTrustAnchor(o: {
  commonName: string;
  keyPair: KeyPair;
  notBefore?: Date;
  notAfter: Date;
}): IssuedCertificate {
  const spki = p256Spki(o.keyPair.publicKey);
  assertKeyMatches(spki, o.keyPair.privateKey);
  const name = encodeName(o.commonName);
  const keyId = keyIdentifier(spki);
  const extensions = [
    caBasicConstraints(undefined),
    CA_KEY_USAGE,
    subjectKeyIdExtension(keyId),
    authorityKeyIdExtension(keyId),
  ];
  const window = validity(o.notBefore, o.notAfter);
  const algorithmAndIssuer = Buffer.concat([ECDSA_WITH_SHA256, name]);
  return signCertificate(
    { algorithmAndIssuer, subjectName: name, spki, ...window, extensions },
    o.keyPair.privateKey,
  );
}

/** Intermediate CA signed by `signer`: pathLen 0, so it can sign leaves but no further CAs. */
export function createIssuer(o: {
  commonName: string;
  publicKey: KeyObject;
  signer: Signer;
  notBefore?: Date;
  notAfter: Date;
}): IssuedCertificate {
  const spki = p256Spki(o.publicKey);
  const subjectName = encodeName(o.commonName);
  const signer = signerContext(o.signer);
  if (signer.pathLen === 0) {
    throw new PkiError("SignerPathLenExceeded", "the signer has pathLen 0 and cannot sign another CA");
  }
  const extensions = [
    caBasicConstraints(0),
    CA_KEY_USAGE,
    subjectKeyIdExtension(keyIdentifier(spki)),
    signer.authorityKeyId,
  ];
  const window = validity(o.notBefore, o.notAfter, signer.notAfter);
  return signCertificate(
    { algorithmAndIssuer: signer.algorithmAndIssuer, subjectName, spki, ...window, extensions },
    o.signer.privateKey,
  );
}

function altNamesExtension(
  o: { spiffeId?: string; dnsNames?: string[]; ipAddresses?: string[] },
  critical: boolean,
) {
  const uris: string[] = [];
  if (o.spiffeId !== undefined) {
    validateSpiffeId(o.spiffeId);
    uris.push(o.spiffeId);
  }
  const dnsNames = o.dnsNames ?? [];
  for (const name of dnsNames) validateDnsName(name);
  const ipBytes = (o.ipAddresses ?? []).map(ipToBytes);
  if (uris.length + dnsNames.length + ipBytes.length === 0) {
    throw new PkiError("MissingSubjectAltName", "a leaf needs a SPIFFE ID, a DNS name or an IP address");
  }
  return subjectAltNameExtension({ uris, dnsNames }, ipBytes, critical);
}

/** End-entity certificate for mTLS: CA:false, digitalSignature, serverAuth + clientAuth. */
export function issueLeaf(o: {
  /** The key to certify, or a request from parseCsr: its verified key is certified with no import. */
  publicKey: KeyObject | CertificateRequest;
  signer: Signer;
  spiffeId?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  commonName?: string;
  notBefore?: Date;
  notAfter: Date;
}): IssuedCertificate {
  const spki =
    o.publicKey instanceof CertificateRequest
      ? CertificateRequest.spkiOf(o.publicKey)
      : p256Spki(o.publicKey);
  const subjectName = encodeName(o.commonName);
  const signer = signerContext(o.signer);
  const extensions = [
    signer.leafExtensions,
    SUBJECT_KEY_ID_PREFIX, // the key id itself follows: SHA-1, 20 bytes
    keyIdentifier(spki),
    altNamesExtension(o, o.commonName === undefined),
  ];
  const window = validity(o.notBefore, o.notAfter, signer.notAfter);
  return signCertificate(
    { algorithmAndIssuer: signer.algorithmAndIssuer, subjectName, spki, ...window, extensions },
    o.signer.privateKey,
  );
}
