// The lean DER layer: encodings checked against known bytes and openssl asn1parse, and the reader's
// refusal of everything DER forbids (it faces hostile input through parseCsr).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DerReader, readIntegerBytes } from "./der-decode.ts";
import { namedBits, oid, sequence, smallInteger, TAG, tlv, unsignedInteger } from "./der-encode.ts";
import { PkiError } from "./errors.ts";
import { opensslOrThrow } from "./testing/openssl-cli.ts";
import { decodeTime, encodeTime, toWholeSeconds } from "./x509-time.ts";

const hex = (b: Buffer) => b.toString("hex");

describe("DER encoding", () => {
  const cases: Array<{ name: string; value: () => Buffer; hex: string }> = [
    { name: "empty sequence", value: () => sequence(), hex: "3000" },
    {
      name: "127-byte value, short length",
      value: () => tlv(TAG.octetString, Buffer.alloc(127)),
      hex: `047f${"00".repeat(127)}`,
    },
    {
      name: "128-byte value, one length byte",
      value: () => tlv(TAG.octetString, Buffer.alloc(128)),
      hex: `048180${"00".repeat(128)}`,
    },
    {
      name: "256-byte value, two length bytes",
      value: () => tlv(TAG.octetString, Buffer.alloc(256)),
      hex: `04820100${"00".repeat(256)}`,
    },
    { name: "integer 0", value: () => smallInteger(0), hex: "020100" },
    { name: "integer 127", value: () => smallInteger(127), hex: "02017f" },
    { name: "integer 128 gets a sign byte", value: () => smallInteger(128), hex: "02020080" },
    { name: "integer 65535", value: () => smallInteger(65535), hex: "020300ffff" },
    {
      name: "unsigned magnitude with leading zeros",
      value: () => unsignedInteger(Buffer.from("000001", "hex")),
      hex: "020101",
    },
    { name: "OID ecdsa-with-SHA256", value: () => oid("1.2.840.10045.4.3.2"), hex: "06082a8648ce3d040302" },
    { name: "OID with large arc", value: () => oid("1.3.6.1.4.1.311.21.20"), hex: "06092b0601040182371514" },
    { name: "KeyUsage digitalSignature", value: () => namedBits([0]), hex: "03020780" },
    { name: "KeyUsage keyCertSign + cRLSign", value: () => namedBits([5, 6]), hex: "03020106" },
    { name: "KeyUsage decipherOnly (bit 8)", value: () => namedBits([8]), hex: "0303070080" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.equal(hex(c.value()), c.hex);
    });
  }

  test("openssl asn1parse reads nested structures back", () => {
    const value = sequence(smallInteger(300), oid("2.5.29.17"), tlv(TAG.octetString, Buffer.alloc(200, 1)));
    const dump = opensslOrThrow(["asn1parse", "-inform", "DER", "-in", "v.der"], { "v.der": value });
    assert.match(dump, /INTEGER\s+:012C/);
    assert.match(dump, /OBJECT\s+:X509v3 Subject Alternative Name/);
    assert.match(dump, /OCTET STRING/);
  });
});

describe("validity times", () => {
  const cases = [
    { iso: "1950-01-01T00:00:00Z", tag: TAG.utcTime, text: "500101000000Z" },
    { iso: "1999-12-31T23:59:59Z", tag: TAG.utcTime, text: "991231235959Z" },
    { iso: "2049-12-31T23:59:59Z", tag: TAG.utcTime, text: "491231235959Z" },
    { iso: "2050-01-01T00:00:00Z", tag: TAG.generalizedTime, text: "20500101000000Z" },
    { iso: "9999-12-31T23:59:59Z", tag: TAG.generalizedTime, text: "99991231235959Z" },
  ];
  for (const c of cases) {
    test(`${c.iso} round-trips as ${c.tag === TAG.utcTime ? "UTCTime" : "GeneralizedTime"}`, () => {
      const encoded = encodeTime(new Date(c.iso));
      assert.equal(encoded[0], c.tag);
      assert.equal(encoded.subarray(2).toString("latin1"), c.text);
      assert.equal(
        decodeTime(c.tag, encoded, 2, encoded.length)?.toISOString(),
        new Date(c.iso).toISOString(),
      );
    });
  }

  test("times outside 1950–9999 are refused", () => {
    for (const iso of ["1949-12-31T23:59:59Z", "+010000-01-01T00:00:00Z"]) {
      assert.throws(
        () => encodeTime(new Date(iso)),
        (e: unknown) => e instanceof PkiError && e.code === "InvalidValidity",
      );
    }
  });

  test("milliseconds are dropped, also before 1970", () => {
    assert.equal(
      toWholeSeconds(new Date("2030-01-01T00:00:00.999Z")).toISOString(),
      "2030-01-01T00:00:00.000Z",
    );
    assert.equal(
      toWholeSeconds(new Date("1960-01-01T00:00:00.250Z")).toISOString(),
      "1960-01-01T00:00:00.000Z",
    );
  });

  const bad = [
    { name: "February 30th", tag: TAG.utcTime, text: "300230000000Z" },
    { name: "hour 24", tag: TAG.utcTime, text: "300101240000Z" },
    { name: "a time-zone offset", tag: TAG.utcTime, text: "3001010000+0100" },
    { name: "no Z", tag: TAG.utcTime, text: "3001010000000" },
    { name: "fractional seconds", tag: TAG.generalizedTime, text: "20300101000000.5Z" },
    { name: "letters", tag: TAG.generalizedTime, text: "2030O101000000Z" },
    { name: "UTCTime length with a GeneralizedTime tag", tag: TAG.generalizedTime, text: "300101000000Z" },
  ];
  for (const c of bad) {
    test(`decoding refuses ${c.name}`, () => {
      const value = Buffer.from(c.text, "latin1");
      assert.equal(decodeTime(c.tag, value, 0, value.length), undefined);
    });
  }
});

describe("DER reading refuses what DER forbids", () => {
  const cases = [
    { name: "an empty buffer", hex: "" },
    { name: "a truncated header", hex: "30" },
    { name: "a value past the end", hex: "300500" },
    { name: "an indefinite length", hex: "30800000" },
    { name: "a long-form length under 128", hex: "30810100" },
    { name: "a length with a leading zero byte", hex: "3082000100" },
    { name: "a five-byte length", hex: "308500000000010000" },
    { name: "a high tag number", hex: "1f2200" },
    { name: "trailing data", hex: "300000" },
    { name: "the wrong tag", hex: "3100" },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const buf = Buffer.from(c.hex, "hex");
      assert.throws(
        () => DerReader.single(buf, TAG.sequence, "MalformedDer"),
        (e: unknown) => e instanceof PkiError && e.code === "MalformedDer",
      );
    });
  }

  const integers = [
    { name: "an empty integer", hex: "0200" },
    { name: "a non-minimal positive integer", hex: "0202007f" },
    { name: "a non-minimal negative integer", hex: "0202ff80" },
  ];
  for (const c of integers) {
    test(c.name, () => {
      const reader = new DerReader(Buffer.from(c.hex, "hex"), "MalformedDer");
      assert.throws(
        () => readIntegerBytes(reader),
        (e: unknown) => e instanceof PkiError && e.code === "MalformedDer",
      );
    });
  }
});
