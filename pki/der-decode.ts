// Strict DER reading for the structures the pki module parses (certificates, CSRs, a few
// extensions). A reader walks the children of one constructed value; every failure — truncation,
// indefinite or non-minimal lengths, high tag numbers, trailing bytes — throws PkiError with the
// caller's code, so hostile input can never escape as a RangeError or read outside the buffer.

import { TAG } from "./der-encode.ts";
import { PkiError, type PkiErrorCode } from "./errors.ts";

/** One decoded TLV: `start` is where its header begins, `valueStart`..`end` its content. */
export interface Tlv {
  tag: number;
  start: number;
  valueStart: number;
  end: number;
}

export class DerReader {
  readonly buf: Buffer;
  readonly code: PkiErrorCode;
  private offset: number;
  private readonly limit: number;

  constructor(buf: Buffer, code: PkiErrorCode, start = 0, end = buf.length) {
    this.buf = buf;
    this.code = code;
    this.offset = start;
    this.limit = end;
  }

  /** A reader over the children of a constructed TLV. */
  static inside(buf: Buffer, tlv: Tlv, code: PkiErrorCode): DerReader {
    return new DerReader(buf, code, tlv.valueStart, tlv.end);
  }

  fail(what: string): never {
    throw new PkiError(this.code, `malformed DER: ${what}`);
  }

  atEnd(): boolean {
    return this.offset >= this.limit;
  }

  peekTag(): number | undefined {
    return this.offset < this.limit ? this.buf[this.offset] : undefined;
  }

  /** Reads the next TLV; with `expectedTag`, anything else is malformed. */
  next(expectedTag?: number): Tlv {
    const buf = this.buf;
    const start = this.offset;
    if (start + 2 > this.limit) this.fail("truncated header");
    const tag = buf[start] ?? 0;
    if ((tag & 0x1f) === 0x1f) this.fail("high tag numbers are not used here");
    if (expectedTag !== undefined && tag !== expectedTag) {
      this.fail(`expected tag 0x${expectedTag.toString(16)}, found 0x${tag.toString(16)}`);
    }
    let length = buf[start + 1] ?? 0;
    let valueStart = start + 2;
    if (length & 0x80) {
      const size = length & 0x7f;
      if (size === 0 || size > 4) this.fail("indefinite or oversized length");
      if (valueStart + size > this.limit) this.fail("truncated length");
      length = 0;
      for (let i = 0; i < size; i++) length = length * 256 + (buf[valueStart + i] ?? 0);
      if (length < 0x80 || (buf[valueStart] ?? 0) === 0) this.fail("non-minimal length");
      valueStart += size;
    }
    const end = valueStart + length;
    if (end > this.limit) this.fail("value runs past its container");
    this.offset = end;
    return { tag, start, valueStart, end };
  }

  /** Reads the next TLV if it has `tag`, otherwise leaves the reader where it is. */
  optional(tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.next(tag) : undefined;
  }

  /** Asserts nothing is left; DER has no trailing data. */
  finish(): void {
    if (this.offset !== this.limit) this.fail("unexpected trailing data");
  }

  /** Reads the whole buffer as exactly one TLV with `tag`. */
  static single(buf: Buffer, tag: number, code: PkiErrorCode): Tlv {
    const reader = new DerReader(buf, code);
    const tlv = reader.next(tag);
    reader.finish();
    return tlv;
  }
}

/** True when the TLV at `tlv` is byte-for-byte the pre-encoded TLV `expected` (OIDs, algorithms). */
export function tlvEquals(buf: Buffer, tlv: Tlv, expected: Buffer): boolean {
  if (tlv.end - tlv.start !== expected.length) return false;
  // A byte loop: these are OIDs and algorithm identifiers of a dozen bytes, where Buffer#compare's
  // argument checking costs more than the comparison.
  for (let i = 0; i < expected.length; i++) if (buf[tlv.start + i] !== expected[i]) return false;
  return true;
}

/** BIT STRING with no unused bits (keys, signatures): the content after the unused-bits byte. */
export function readWholeBytes(reader: DerReader): Buffer {
  const tlv = reader.next(TAG.bitString);
  if (tlv.end === tlv.valueStart || reader.buf[tlv.valueStart] !== 0)
    reader.fail("bit string has unused bits");
  return reader.buf.subarray(tlv.valueStart + 1, tlv.end);
}

/** INTEGER content as big-endian bytes; rejects empty and non-minimal encodings. */
export function readIntegerBytes(reader: DerReader): Buffer {
  const tlv = reader.next(TAG.integer);
  const length = tlv.end - tlv.valueStart;
  const first = reader.buf[tlv.valueStart] ?? 0;
  const second = reader.buf[tlv.valueStart + 1] ?? 0;
  if (length === 0) reader.fail("empty integer");
  if (length > 1 && ((first === 0 && !(second & 0x80)) || (first === 0xff && second & 0x80))) {
    reader.fail("non-minimal integer");
  }
  return reader.buf.subarray(tlv.valueStart, tlv.end);
}

/** A small non-negative INTEGER (versions, path lengths). */
export function readSmallInteger(reader: DerReader): number {
  const bytes = readIntegerBytes(reader);
  if (bytes.length > 4 || (bytes[0] ?? 0) & 0x80) reader.fail("integer out of range");
  let value = 0;
  for (const b of bytes) value = value * 256 + b;
  return value;
}

/** Decodes the directory-string types a commonName may use. */
export function decodeDirectoryString(buf: Buffer, tlv: Tlv): string | undefined {
  const value = buf.subarray(tlv.valueStart, tlv.end);
  switch (tlv.tag) {
    case TAG.utf8String:
      return value.toString("utf8");
    case TAG.printableString:
    case TAG.ia5String:
    case TAG.t61String:
      return value.toString("latin1");
    case TAG.bmpString:
      return value.length % 2 === 0 ? Buffer.from(value).swap16().toString("utf16le") : undefined;
    default:
      return undefined;
  }
}
