// Certificate serial numbers: 16 random bytes, positive and minimally encoded (RFC 5280 §4.1.2.2
// allows up to 20 octets; CA/Browser practice wants at least 64 random bits). Random bytes are drawn
// in batches because one getrandom call per certificate is a measurable share of issuing cost.

import { randomFillSync } from "node:crypto";
import { TAG } from "./der-encode.ts";

const SERIAL_BYTES = 16;
const pool = Buffer.alloc(SERIAL_BYTES * 256);
/** Where the pool's unused random bytes start. */
let unused = pool.length;

/** The INTEGER TLV's size: 0x02 0x10 then 16 bytes whose first is 0x01–0x7f (positive, no padding byte). */
export const SERIAL_DER_SIZE = 2 + SERIAL_BYTES;

/** Writes a fresh serial's INTEGER TLV at `offset` of `out`; returns the end. */
export function writeRandomSerial(out: Buffer, offset: number): number {
  if (unused + SERIAL_BYTES > pool.length) {
    randomFillSync(pool);
    unused = 0;
  }
  out[offset] = TAG.integer;
  out[offset + 1] = SERIAL_BYTES;
  // Copied byte by byte and wiped behind: no view object per serial, and no random byte used twice.
  for (let i = 0; i < SERIAL_BYTES; i++) {
    out[offset + 2 + i] = pool[unused + i] ?? 0;
    pool[unused + i] = 0;
  }
  unused += SERIAL_BYTES;
  out[offset + 2] = (out[offset + 2] ?? 0) & 0x7f || 0x01;
  return offset + SERIAL_DER_SIZE;
}

/** The serial of the INTEGER TLV written at `offset` of `der`, as lowercase hex. */
export function serialHexAt(der: Buffer, offset: number): string {
  return der.toString("hex", offset + 2, offset + SERIAL_DER_SIZE);
}
