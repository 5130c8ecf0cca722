// Certificate validity times (RFC 5280 §4.1.2.5): UTCTime for years 1950–2049, GeneralizedTime from
// 2050, always UTC with whole seconds. Encoding and strict decoding live together so they agree.

import { TAG, tlv } from "./der-encode.ts";
import { PkiError } from "./errors.ts";

const MIN_TIME = Date.UTC(1950, 0, 1);
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59);

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Drops milliseconds: X.509 times carry whole seconds, and callers get back what was encoded. */
export function toWholeSeconds(date: Date): Date {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new PkiError("InvalidValidity", "a validity time is not a valid Date");
  return new Date(ms - (((ms % 1000) + 1000) % 1000));
}

export function encodeTime(date: Date): Buffer {
  const ms = date.getTime();
  if (!(ms >= MIN_TIME && ms <= MAX_TIME)) {
    throw new PkiError("InvalidValidity", `validity time ${date.toISOString()} is outside 1950–9999`);
  }
  const year = date.getUTCFullYear();
  const rest =
    pad2(date.getUTCMonth() + 1) +
    pad2(date.getUTCDate()) +
    pad2(date.getUTCHours()) +
    pad2(date.getUTCMinutes()) +
    pad2(date.getUTCSeconds());
  if (year < 2050) return tlv(TAG.utcTime, Buffer.from(`${pad2(year % 100)}${rest}Z`, "latin1"));
  return tlv(TAG.generalizedTime, Buffer.from(`${year}${rest}Z`, "latin1"));
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
