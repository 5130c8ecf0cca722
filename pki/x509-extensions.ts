// The certificate extensions Trellis writes (basic constraints, key usage, extended key usage, key
// identifiers, subject alternative names) and a decoder that reads them back from certificates and
// CSR extension requests. Extensions outside this set are skipped, but counted when critical so
// chain verification can refuse what it does not understand (RFC 5280 §4.2).

import { DerReader, readSmallInteger, type Tlv, tlvEquals } from "./der-decode.ts";
import {
  BOOLEAN_TRUE,
  booleanTrue,
  contextPrimitiveTag,
  namedBits,
  octetString,
  putHeader,
  sequence,
  smallInteger,
  TAG,
  tlv,
  tlvSize,
} from "./der-encode.ts";
import type { PkiErrorCode } from "./errors.ts";
import { OID } from "./oids.ts";
import {
  type AltNames,
  decodeGeneralNames,
  type EncodableNames,
  generalNamesLength,
  writeGeneralNames,
} from "./subject-alt-names.ts";

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

export function extension(oid: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid, booleanTrue(), octetString(value)) : sequence(oid, octetString(value));
}

export const LEAF_BASIC_CONSTRAINTS = extension(OID.basicConstraints, true, sequence());
export const LEAF_KEY_USAGE = extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature]));
export const CA_KEY_USAGE = extension(
  OID.keyUsage,
  true,
  namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]),
);
export const SERVER_AND_CLIENT_AUTH = extension(
  OID.extKeyUsage,
  false,
  sequence(OID.serverAuth, OID.clientAuth),
);

export function caBasicConstraints(pathLen: number | undefined): Buffer {
  const value =
    pathLen === undefined ? sequence(booleanTrue()) : sequence(booleanTrue(), smallInteger(pathLen));
  return extension(OID.basicConstraints, true, value);
}

/** SEQUENCE { subjectKeyIdentifier, OCTET STRING { OCTET STRING (20) } }: all but the 20-byte key id is fixed. */
export const SUBJECT_KEY_ID_PREFIX = extension(
  OID.subjectKeyIdentifier,
  false,
  octetString(Buffer.alloc(20)),
).subarray(0, -20);

export function subjectKeyIdExtension(keyId: Buffer): Buffer {
  if (keyId.length === 20)
    return Buffer.concat([SUBJECT_KEY_ID_PREFIX, keyId], SUBJECT_KEY_ID_PREFIX.length + 20);
  return extension(OID.subjectKeyIdentifier, false, octetString(keyId));
}

export function authorityKeyIdExtension(keyId: Buffer): Buffer {
  return extension(OID.authorityKeyIdentifier, false, sequence(tlv(contextPrimitiveTag(0), keyId)));
}

/**
 * The SubjectAltName extension, in one allocation (it is the one extension of a leaf that changes
 * from certificate to certificate). RFC 5280 §4.2.1.6: critical when the subject is empty.
 */
export function subjectAltNameExtension(
  names: EncodableNames,
  ipBytes: readonly Buffer[],
  critical: boolean,
): Buffer {
  const generalNames = generalNamesLength(names, ipBytes);
  const value = tlvSize(generalNames);
  const content = OID.subjectAltName.length + (critical ? BOOLEAN_TRUE.length : 0) + tlvSize(value);
  const out = Buffer.allocUnsafe(tlvSize(content));
  let p = putHeader(out, 0, TAG.sequence, content);
  out.set(OID.subjectAltName, p);
  p += OID.subjectAltName.length;
  if (critical) {
    out.set(BOOLEAN_TRUE, p);
    p += BOOLEAN_TRUE.length;
  }
  p = putHeader(out, p, TAG.octetString, value);
  writeGeneralNames(out, p, generalNames, names, ipBytes);
  return out;
}

export interface DecodedExtensions {
  isCa: boolean;
  pathLen?: number;
  /** Bit i set when KeyUsage bit i is asserted; undefined when the extension is absent. */
  keyUsage?: number;
  subjectKeyId?: Buffer;
  authorityKeyId?: Buffer;
  altNames: AltNames;
  unhandledCritical: number;
}

function readBasicConstraints(buf: Buffer, value: Tlv, out: DecodedExtensions, code: PkiErrorCode): void {
  const outer = new DerReader(buf, code, value.valueStart, value.end);
  const reader = DerReader.inside(buf, outer.next(TAG.sequence), code);
  outer.finish();
  const ca = reader.optional(TAG.boolean);
  out.isCa = ca !== undefined && buf[ca.valueStart] !== 0;
  if (!reader.atEnd()) out.pathLen = readSmallInteger(reader);
  reader.finish();
}

function readKeyUsage(buf: Buffer, value: Tlv, out: DecodedExtensions, code: PkiErrorCode): void {
  const reader = new DerReader(buf, code, value.valueStart, value.end);
  const bits = reader.next(TAG.bitString);
  reader.finish();
  let mask = 0;
  for (let i = 0; i < 9 && bits.valueStart + 1 + (i >> 3) < bits.end; i++) {
    if ((buf[bits.valueStart + 1 + (i >> 3)] ?? 0) & (0x80 >> (i & 7))) mask |= 1 << i;
  }
  out.keyUsage = mask;
}

function readKeyIds(buf: Buffer, oid: Tlv, value: Tlv, out: DecodedExtensions, code: PkiErrorCode): boolean {
  const reader = new DerReader(buf, code, value.valueStart, value.end);
  if (tlvEquals(buf, oid, OID.subjectKeyIdentifier)) {
    const id = reader.next(TAG.octetString);
    out.subjectKeyId = buf.subarray(id.valueStart, id.end);
  } else if (tlvEquals(buf, oid, OID.authorityKeyIdentifier)) {
    const fields = DerReader.inside(buf, reader.next(TAG.sequence), code);
    const id = fields.optional(contextPrimitiveTag(0));
    if (id !== undefined) out.authorityKeyId = buf.subarray(id.valueStart, id.end);
  } else {
    return false;
  }
  reader.finish();
  return true;
}

/** Decodes an Extensions SEQUENCE (the content of `[3]`, or a CSR's extension request). */
export function decodeExtensions(buf: Buffer, extensions: Tlv, code: PkiErrorCode): DecodedExtensions {
  const out: DecodedExtensions = {
    isCa: false,
    altNames: { uris: [], dnsNames: [], ipAddresses: [] },
    unhandledCritical: 0,
  };
  const seen: Buffer[] = [];
  const list = DerReader.inside(buf, extensions, code);
  while (!list.atEnd()) {
    const ext = DerReader.inside(buf, list.next(TAG.sequence), code);
    const oid = ext.next(TAG.oid);
    const critical = ext.optional(TAG.boolean);
    const value = ext.next(TAG.octetString);
    ext.finish();
    // A handful of extensions per certificate: comparing against each seen OID beats hashing strings.
    if (seen.some((other) => tlvEquals(buf, oid, other))) ext.fail("an extension appears twice");
    seen.push(buf.subarray(oid.start, oid.end));
    if (tlvEquals(buf, oid, OID.basicConstraints)) readBasicConstraints(buf, value, out, code);
    else if (tlvEquals(buf, oid, OID.keyUsage)) readKeyUsage(buf, value, out, code);
    else if (tlvEquals(buf, oid, OID.subjectAltName)) out.altNames = decodeGeneralNames(buf, value, code);
    else if (tlvEquals(buf, oid, OID.extKeyUsage)) continue;
    else if (
      !readKeyIds(buf, oid, value, out, code) &&
      critical !== undefined &&
      buf[critical.valueStart] !== 0
    ) {
      out.unhandledCritical++;
    }
  }
  return out;
}
