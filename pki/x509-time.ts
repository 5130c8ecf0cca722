// Certificate validity times (RFC 5280 §4.1.2.5): UTCTime for years 1950–2049, GeneralizedTime from
// 2050, always UTC with whole seconds. Encoding and strict decoding live together so they agree.

import { TAG } from "./der-encode.ts";
import { PkiError } from "./errors.ts";

const MIN_TIME = Date.UTC(1950, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59);

/** Drops milliseconds: X.509 times carry whole seconds, and callers get back what was encoded. */
export function toWholeSeconds(date: Date): Date {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new PkiError("InvalidValidity", "a validity time is not a valid Date");
  return new Date(ms - (((ms % 1000) + 1000) % 1000));
}

function checkRange(date: Date): void {
  const ms = date.getTime();
  if (!(ms >= MIN_TIME && ms <= MAX_TIME)) {
    const shown = Number.isFinite(ms) ? date.toISOString() : "an invalid Date";
    throw new PkiError("InvalidValidity", `validity time ${shown} is outside 1950–9999`);
  }
}

/** Encoded size: UTCTime YYMMDDHHMMSSZ (2 + 13) or GeneralizedTime YYYYMMDDHHMMSSZ (2 + 15). */
function timeSize(date: Date): number {
  return date.getUTCFullYear() < 2050 ? 15 : 17;
}

function put2(out: Buffer, p: number, n: number): number {
  out[p] = 0x30 + Math.floor(n / 10);
  out[p + 1] = 0x30 + (n % 10);
  return p + 2;
}

/** Writes the time TLV at `offset` as ASCII digits, without building strings; returns the end. */
function writeTime(out: Buffer, offset: number, date: Date): number {
  const year = date.getUTCFullYear();
  const generalized = year >= 2050;
  out[offset] = generalized ? TAG.generalizedTime : TAG.utcTime;
  out[offset + 1] = generalized ? 15 : 13;
  let p = offset + 2;
  if (generalized) p = put2(out, p, Math.floor(year / 100));
  p = put2(out, p, year % 100);
  p = put2(out, p, date.getUTCMonth() + 1);
  p = put2(out, p, date.getUTCDate());
  p = put2(out, p, date.getUTCHours());
  p = put2(out, p, date.getUTCMinutes());
  p = put2(out, p, date.getUTCSeconds());
  out[p] = 0x5a;
  return p + 1;
}

export function encodeTime(date: Date): Buffer {
  checkRange(date);
  const out = Buffer.allocUnsafe(timeSize(date));
  writeTime(out, 0, date);
  return out;
}

/** Bytes the Validity SEQUENCE { notBefore, notAfter } takes (32 through 2049). */
export function validitySize(notBefore: Date, notAfter: Date): number {
  return 2 + timeSize(notBefore) + timeSize(notAfter);
}

/** Writes the Validity SEQUENCE at `offset`; returns the end. */
export function writeValidity(out: Buffer, offset: number, notBefore: Date, notAfter: Date): number {
  checkRange(notBefore);
  checkRange(notAfter);
  out[offset] = TAG.sequence;
  out[offset + 1] = timeSize(notBefore) + timeSize(notAfter);
  return writeTime(out, writeTime(out, offset + 2, notBefore), notAfter);
}

/** The Validity SEQUENCE { notBefore, notAfter } in one allocation. */
export function encodeValidity(notBefore: Date, notAfter: Date): Buffer {
  const out = Buffer.allocUnsafe(validitySize(notBefore, notAfter));
  writeValidity(out, 0, notBefore, notAfter);
  return out;
}

function digits(buf: Buffer, start: number, count: number): number {
  let value = 0;
  for (let i = start; i < start + count; i++) {
    const c = buf[i] ?? 0;
    if (c < 0x30 || c > 0x39) return Number.NaN;
    value = value * 10 + (c - 0x30);
  }
  return value;
}

/**
 * Decodes the value bytes of a UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ);
 * returns undefined for anything else (offsets, fractions, impossible dates).
 */
export function decodeTime(tag: number, buf: Buffer, start: number, end: number): Date | undefined {
  let year: number;
  let p: number;
  if (tag === TAG.utcTime && end - start === 13) {
    const yy = digits(buf, start, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    p = start + 2;
  } else if (tag === TAG.generalizedTime && end - start === 15) {
    year = digits(buf, start, 4);
    p = start + 4;
  } else {
    return undefined;
  }
  if (buf[end - 1] !== 0x5a) return undefined;
  const month = digits(buf, p, 2);
  const day = digits(buf, p + 2, 2);
  const hour = digits(buf, p + 4, 2);
  const minute = digits(buf, p + 6, 2);
  const second = digits(buf, p + 8, 2);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (!Number.isFinite(ms)) return undefined;
  const date = new Date(ms);
  const exact =
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second;
  return exact ? date : undefined;
}
