// Distinguished names, reduced to what a mesh uses: a subject that is either empty or a single
// commonName. Issuer names are never re-encoded — they are copied byte for byte from the signer's
// subject, which is what chain building compares.

import { DerReader, decodeDirectoryString, type Tlv, tlvEquals } from "./der-decode.ts";
import { sequence, set, TAG, utf8String } from "./der-encode.ts";
import { PkiError, type PkiErrorCode } from "./errors.ts";
import { OID } from "./oids.ts";

const EMPTY_NAME = sequence();

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

export function validateCommonName(commonName: string): void {
  // ub-common-name is 64 characters (RFC 5280 Appendix A); control characters have no place in a name.
  if (commonName.length === 0 || commonName.length > 64 || hasControlCharacter(commonName)) {
    throw new PkiError("InvalidCommonName", "a common name must be 1–64 printable characters");
  }
}

/** Name DER: `CN=<commonName>` as UTF8String, or the empty sequence. */
export function encodeName(commonName: string | undefined): Buffer {
  if (commonName === undefined) return EMPTY_NAME;
  validateCommonName(commonName);
  return sequence(set(sequence(OID.commonName, utf8String(commonName))));
}

/** The first commonName in the Name at `name`, if any. */
export function readCommonName(buf: Buffer, name: Tlv, code: PkiErrorCode): string | undefined {
  const rdns = DerReader.inside(buf, name, code);
  let found: string | undefined;
  while (!rdns.atEnd()) {
    const attributes = DerReader.inside(buf, rdns.next(TAG.set), code);
    while (!attributes.atEnd()) {
      const pair = DerReader.inside(buf, attributes.next(TAG.sequence), code);
      const type = pair.next(TAG.oid);
      const value = pair.next();
      pair.finish();
      if (found === undefined && tlvEquals(buf, type, OID.commonName)) {
        found = decodeDirectoryString(buf, value);
        if (found === undefined) pair.fail("commonName is not a directory string");
      }
    }
  }
  return found;
}

function canonicalName(name: Buffer): string {
  const code = "MalformedCertificate";
  const rdns = DerReader.inside(name, DerReader.single(name, TAG.sequence, code), code);
  const parts: string[] = [];
  while (!rdns.atEnd()) {
    const attributes = DerReader.inside(name, rdns.next(TAG.set), code);
    const rdn: string[] = [];
    while (!attributes.atEnd()) {
      const pair = DerReader.inside(name, attributes.next(TAG.sequence), code);
      const type = pair.next(TAG.oid);
      const value = pair.next();
      const text = decodeDirectoryString(name, value);
      const canonical =
        text === undefined
          ? `#${name.toString("hex", value.start, value.end)}`
          : text.trim().replace(/\s+/g, " ").toLowerCase();
      rdn.push(`${name.toString("hex", type.valueStart, type.end)}=${canonical}`);
    }
    parts.push(rdn.sort().join("+"));
  }
  return parts.join(",");
}

/**
 * Whether two encoded Names denote the same name (RFC 5280 §7.1). Identical bytes is the common
 * case; otherwise both are compared after OpenSSL-style canonicalisation (string type ignored,
 * case folded, whitespace collapsed), so an anchor written by another tool still chains.
 */
export function namesMatch(a: Buffer, b: Buffer): boolean {
  if (a.equals(b)) return true;
  try {
    return canonicalName(a) === canonicalName(b);
  } catch {
    return false;
  }
}
