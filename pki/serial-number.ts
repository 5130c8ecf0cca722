// Certificate serial numbers: 16 random bytes, positive and minimally encoded (RFC 5280 §4.1.2.2
// allows up to 20 octets; CA/Browser practice wants at least 64 random bits). Random bytes are drawn
// in batches because one getrandom call per certificate is a measurable share of issuing cost.

import { randomFillSync } from "node:crypto";
import { TAG } from "./der-encode.ts";

const SERIAL_BYTES = 16;
const pool = Buffer.alloc(SERIAL_BYTES * 256);
let offset = pool.length;

export interface Serial {
  /** The INTEGER TLV: 0x02 0x10 then 16 bytes whose first is 0x01–0x7f (positive, no padding byte). */
  der: Buffer;
  /** The 16 bytes as lowercase hex. */
  hex: string;
}

export function randomSerial(): Serial {
  if (offset + SERIAL_BYTES > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const der = Buffer.allocUnsafe(2 + SERIAL_BYTES);
  der[0] = TAG.integer;
  der[1] = SERIAL_BYTES;
  pool.copy(der, 2, offset, offset + SERIAL_BYTES);
  pool.fill(0, offset, offset + SERIAL_BYTES);
  offset += SERIAL_BYTES;
  der[2] = (der[2] ?? 0) & 0x7f || 0x01;
  return { der, hex: der.toString("hex", 2) };
}
