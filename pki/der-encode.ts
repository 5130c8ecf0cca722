// DER encoding of the handful of ASN.1 types X.509 certificates and PKCS#10 requests need.
// Not a general ASN.1 library: single-byte tags only, definite lengths, values built bottom-up
// as Buffers and concatenated once per level (certificates are ~600 bytes, a few levels deep), or,
// where the sizes are known first (the certificates pki issues), written into one Buffer.

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  t61String: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag number `n`, constructed (`[n] EXPLICIT` or an implicit SEQUENCE). */
export function contextConstructedTag(n: number): number {
  return 0xa0 | n;
}

/** Context-specific tag number `n`, primitive (`[n] IMPLICIT` over a primitive type). */
export function contextPrimitiveTag(n: number): number {
  return 0x80 | n;
}

function headerLength(contentLength: number): number {
  if (contentLength < 0x80) return 2;
  if (contentLength < 0x100) return 3;
  if (contentLength < 0x10000) return 4;
  if (contentLength < 0x1000000) return 5;
  return 6;
}

/** Bytes taken by a TLV whose content is `contentLength` bytes: header and content. */
export function tlvSize(contentLength: number): number {
  return headerLength(contentLength) + contentLength;
}

/**
 * Writes a TLV header at `offset` of `out` and returns where its content starts. With tlvSize,
 * lets a structure whose sizes are known be written into one Buffer instead of one per level.
 */
export function putHeader(out: Buffer, offset: number, tag: number, contentLength: number): number {
  out[offset] = tag;
  if (contentLength < 0x80) {
    out[offset + 1] = contentLength;
    return offset + 2;
  }
  const size = headerLength(contentLength) - 2;
  out[offset + 1] = 0x80 | size;
  for (let i = 0; i < size; i++) out[offset + 2 + i] = (contentLength >>> (8 * (size - 1 - i))) & 0xff;
  return offset + 2 + size;
}

/** One TLV whose value is the concatenation of `parts`. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  let contentLength = 0;
  for (const part of parts) contentLength += part.length;
  const out = Buffer.allocUnsafe(tlvSize(contentLength));
  let offset = putHeader(out, 0, tag, contentLength);
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

export function sequence(...parts: Buffer[]): Buffer {
  return tlv(TAG.sequence, ...parts);
}

export function set(...parts: Buffer[]): Buffer {
  return tlv(TAG.set, ...parts);
}

/** INTEGER from big-endian unsigned magnitude bytes (a 0x00 is prepended when the top bit is set). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return Buffer.from([TAG.integer, 1, 0]);
  return (trimmed[0] ?? 0) & 0x80 ? tlv(TAG.integer, Buffer.of(0), trimmed) : tlv(TAG.integer, trimmed);
}

/** INTEGER for small non-negative numbers (versions, path lengths). */
export function smallInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new RangeError(`smallInteger: ${value} is out of range`);
  }
  const bytes: number[] = [];
  let rest = value;
  do {
    bytes.unshift(rest & 0xff);
    rest >>>= 8;
  } while (rest > 0);
  return unsignedInteger(Buffer.from(bytes));
}

export const BOOLEAN_TRUE = Buffer.from([TAG.boolean, 1, 0xff]);

export function booleanTrue(): Buffer {
  return BOOLEAN_TRUE;
}

/** OBJECT IDENTIFIER TLV from dotted notation; used once per OID at module load. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((arc) => Number(arc));
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) {
    throw new RangeError(`oid: ${dotted} is not a valid object identifier`);
  }
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const chunk: number[] = [arc % 128];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v % 128) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(TAG.oid, Buffer.from(bytes));
}

/** BIT STRING whose content is whole bytes (keys, signatures). */
export function bitString(content: Buffer): Buffer {
  return tlv(TAG.bitString, Buffer.of(0), content);
}

/**
 * BIT STRING of named bits (KeyUsage): bit 0 is the most significant bit of the first byte.
 * DER requires trailing zero bits to be removed and counted as unused.
 */
export function namedBits(bits: readonly number[]): Buffer {
  const highest = Math.max(...bits);
  const content = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bits) content[bit >> 3] = (content[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  const unused = 7 - (highest & 7);
  return tlv(TAG.bitString, Buffer.of(unused), content);
}

export function octetString(content: Buffer): Buffer {
  return tlv(TAG.octetString, content);
}

export function utf8String(value: string): Buffer {
  return tlv(TAG.utf8String, Buffer.from(value, "utf8"));
}

export function ia5String(value: string): Buffer {
  return tlv(TAG.ia5String, Buffer.from(value, "latin1"));
}
