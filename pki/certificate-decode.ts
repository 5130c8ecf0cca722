// Lean decoding of an X.509 v3 certificate into the fields Trellis reads: names (raw, for chain
// building, and their commonName), validity, SPKI bytes, signature and the decoded extensions.
// Builds no KeyObject — importing keys is costly, and callers decide which keys they need.

import {
  DerReader,
  readIntegerBytes,
  readSmallInteger,
  readWholeBytes,
  type Tlv,
  tlvEquals,
} from "./der-decode.ts";
import { contextConstructedTag, contextPrimitiveTag, TAG } from "./der-encode.ts";
import { PkiError } from "./errors.ts";
import { VERIFY_ALGORITHMS } from "./oids.ts";
import { type DecodedExtensions, decodeExtensions } from "./x509-extensions.ts";
import { readCommonName } from "./x509-name.ts";
import { decodeTime } from "./x509-time.ts";

const CODE = "MalformedCertificate";

export interface SignatureAlgorithm {
  hash: string;
  rsa: boolean;
}

export interface DecodedCertificate {
  der: Buffer;
  tbs: Buffer;
  /** Undefined when the algorithm is not one this module verifies. */
  signatureAlgorithm?: SignatureAlgorithm;
  signature: Buffer;
  serial: Buffer;
  issuerName: Buffer;
  subjectName: Buffer;
  issuerCommonName?: string;
  subjectCommonName?: string;
  notBefore: Date;
  notAfter: Date;
  spki: Buffer;
  extensions: DecodedExtensions;
}

function readAlgorithm(reader: DerReader): Tlv {
  return reader.next(TAG.sequence);
}

function lookupAlgorithm(buf: Buffer, algorithm: Tlv): SignatureAlgorithm | undefined {
  const reader = DerReader.inside(buf, algorithm, CODE);
  const oid = reader.next(TAG.oid);
  const match = VERIFY_ALGORITHMS.find((a) => tlvEquals(buf, oid, a.oid));
  return match === undefined ? undefined : { hash: match.hash, rsa: match.rsa };
}

function readTime(reader: DerReader): Date {
  const t = reader.next();
  const date = decodeTime(t.tag, reader.buf, t.valueStart, t.end);
  if (date === undefined) reader.fail("a validity time is not a UTCTime or GeneralizedTime in Z form");
  return date;
}

function readVersion(reader: DerReader): void {
  const tagged = reader.optional(contextConstructedTag(0));
  const version = tagged === undefined ? 0 : readSmallInteger(DerReader.inside(reader.buf, tagged, CODE));
  if (version !== 2) throw new PkiError(CODE, "only X.509 v3 certificates are supported");
}

function readExtensions(reader: DerReader): DecodedExtensions {
  const tagged = reader.optional(contextConstructedTag(3));
  if (tagged === undefined) {
    return { isCa: false, altNames: { uris: [], dnsNames: [], ipAddresses: [] }, unhandledCritical: 0 };
  }
  const wrapper = DerReader.inside(reader.buf, tagged, CODE);
  const extensions = decodeExtensions(reader.buf, wrapper.next(TAG.sequence), CODE);
  wrapper.finish();
  return extensions;
}

type TbsFields = Omit<DecodedCertificate, "der" | "tbs" | "signature" | "signatureAlgorithm">;

/** The fields of a TBSCertificate; `outerAlgorithm` must match the inner signature algorithm. */
function readTbs(buf: Buffer, tbsTlv: Tlv, outerAlgorithm: Tlv): TbsFields {
  const tbs = DerReader.inside(buf, tbsTlv, CODE);
  readVersion(tbs);
  const serial = readIntegerBytes(tbs);
  const inner = readAlgorithm(tbs);
  if (!tlvEquals(buf, outerAlgorithm, buf.subarray(inner.start, inner.end))) {
    tbs.fail("inner and outer signature algorithms differ");
  }
  const issuer = tbs.next(TAG.sequence);
  const validity = DerReader.inside(buf, tbs.next(TAG.sequence), CODE);
  const notBefore = readTime(validity);
  const notAfter = readTime(validity);
  validity.finish();
  const subject = tbs.next(TAG.sequence);
  const spki = tbs.next(TAG.sequence);
  for (const uniqueId of [
    contextPrimitiveTag(1),
    contextConstructedTag(1),
    contextPrimitiveTag(2),
    contextConstructedTag(2),
  ]) {
    tbs.optional(uniqueId);
  }
  const extensions = readExtensions(tbs);
  tbs.finish();
  const fields: TbsFields = {
    serial,
    issuerName: buf.subarray(issuer.start, issuer.end),
    subjectName: buf.subarray(subject.start, subject.end),
    notBefore,
    notAfter,
    spki: buf.subarray(spki.start, spki.end),
    extensions,
  };
  const issuerCommonName = readCommonName(buf, issuer, CODE);
  if (issuerCommonName !== undefined) fields.issuerCommonName = issuerCommonName;
  const subjectCommonName = readCommonName(buf, subject, CODE);
  if (subjectCommonName !== undefined) fields.subjectCommonName = subjectCommonName;
  return fields;
}

/** Decodes DER; throws PkiError("MalformedCertificate") for anything that is not a well-formed v3 certificate. */
export function decodeCertificate(der: Buffer): DecodedCertificate {
  const outer = DerReader.inside(der, DerReader.single(der, TAG.sequence, CODE), CODE);
  const tbsTlv = outer.next(TAG.sequence);
  const outerAlgorithm = readAlgorithm(outer);
  const signature = readWholeBytes(outer);
  outer.finish();
  const decoded: DecodedCertificate = {
    der,
    tbs: der.subarray(tbsTlv.start, tbsTlv.end),
    signature,
    ...readTbs(der, tbsTlv, outerAlgorithm),
  };
  const algorithm = lookupAlgorithm(der, outerAlgorithm);
  if (algorithm !== undefined) decoded.signatureAlgorithm = algorithm;
  return decoded;
}

/** Serial as lowercase hex of its magnitude (no sign-padding byte). */
export function serialToHex(serial: Buffer): string {
  const trimmed = serial.length > 1 && serial[0] === 0 ? serial.subarray(1) : serial;
  return trimmed.toString("hex");
}
