// Issuing certificates: the self-signed trust anchor, the intermediate issuer (pathLen 0) and
// workload/serving leaves. Every certificate is ECDSA P-256 with SHA-256, has a random 16-byte
// serial, SubjectKeyIdentifier and AuthorityKeyIdentifier. A certificate never outlives its
// signer: notAfter is capped at the signer's notAfter and the returned dates say what was encoded.
// Signers are decoded and their key checked once, then remembered per certificate Buffer.

import { type KeyObject, sign } from "node:crypto";
import { decodeCertificate } from "./certificate-decode.ts";
import { fingerprint } from "./certificate-info.ts";
import { bitString, contextConstructedTag, sequence, smallInteger, tlv } from "./der-encode.ts";
import { PkiError } from "./errors.ts";
import { assertKeyMatches, type KeyPair, keyIdentifier, p256Spki } from "./keys.ts";
import { ECDSA_WITH_SHA256 } from "./oids.ts";
import { toPem } from "./pem.ts";
import { randomSerial } from "./serial-number.ts";
import { validateSpiffeId } from "./spiffe.ts";
import { encodeGeneralNames, ipToBytes, validateDnsName } from "./subject-alt-names.ts";
import {
  authorityKeyIdExtension,
  CA_KEY_USAGE,
  caBasicConstraints,
  certificateExtensions,
  KEY_USAGE,
  LEAF_BASIC_CONSTRAINTS,
  LEAF_KEY_USAGE,
  SERVER_AND_CLIENT_AUTH,
  subjectAltNameExtension,
  subjectKeyIdExtension,
} from "./x509-extensions.ts";
import { encodeName } from "./x509-name.ts";
import { encodeValidity, toWholeSeconds } from "./x509-time.ts";

export interface Signer {
  certificateDer: Buffer;
  privateKey: KeyObject;
}

export interface IssuedCertificate {
  der: Buffer;
  pem: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
  serialHex: string;
}

/** Default backdating of notBefore, so peers whose clocks run a little behind accept a new certificate. */
const CLOCK_SKEW_MS = 60_000;
const VERSION_3 = tlv(contextConstructedTag(0), smallInteger(2));

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
  extensions: Buffer[];
}

function signCertificate(fields: TbsFields, privateKey: KeyObject): IssuedCertificate {
  const serial = randomSerial();
  const tbs = sequence(
    VERSION_3,
    serial.der,
    fields.algorithmAndIssuer,
    encodeValidity(fields.notBefore, fields.notAfter),
    fields.subjectName,
    fields.spki,
    certificateExtensions(fields.extensions),
  );
  const der = sequence(tbs, ECDSA_WITH_SHA256, bitString(sign("sha256", tbs, privateKey)));
  return {
    der,
    pem: toPem("CERTIFICATE", der),
    notBefore: fields.notBefore,
    notAfter: fields.notAfter,
    fingerprint: fingerprint(der),
    serialHex: serial.hex,
  };
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
  return subjectAltNameExtension(encodeGeneralNames({ uris, dnsNames, ipAddresses: [] }, ipBytes), critical);
}

/** End-entity certificate for mTLS: CA:false, digitalSignature, serverAuth + clientAuth. */
export function issueLeaf(o: {
  publicKey: KeyObject;
  signer: Signer;
  spiffeId?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  commonName?: string;
  notBefore?: Date;
  notAfter: Date;
}): IssuedCertificate {
  const spki = p256Spki(o.publicKey);
  const subjectName = encodeName(o.commonName);
  const signer = signerContext(o.signer);
  const extensions = [
    signer.leafExtensions,
    subjectKeyIdExtension(keyIdentifier(spki)),
    altNamesExtension(o, o.commonName === undefined),
  ];
  const window = validity(o.notBefore, o.notAfter, signer.notAfter);
  return signCertificate(
    { algorithmAndIssuer: signer.algorithmAndIssuer, subjectName, spki, ...window, extensions },
    o.signer.privateKey,
  );
}
