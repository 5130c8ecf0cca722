// Certificate serial numbers: 16 random bytes, positive and minimally encoded (RFC 5280 §4.1.2.2
// allows up to 20 octets; CA/Browser practice wants at least 64 random bits). Random bytes are drawn
// in batches because one getrandom call per certificate is a measurable share of issuing cost.

import { randomFillSync } from "node:crypto";

const SERIAL_BYTES = 16;
const pool = Buffer.alloc(SERIAL_BYTES * 256);
let offset = pool.length;

/** A fresh serial as big-endian bytes whose first byte is 0x01–0x7f (positive, no padding byte). */
export function randomSerial(): Buffer {
  if (offset + SERIAL_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const serial = Buffer.from(pool.subarray(offset, offset + SERIAL_BYTES));
  pool.fill(0, offset, offset + SERIAL_BYTES);
  offset += SERIAL_BYTES;
  serial[0] = (serial[0] ?? 0) & 0x7f || 0x01;
  return serial;
}
