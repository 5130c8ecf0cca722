import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classify } from "../detect.ts";

describe("protocol detection", () => {
  const table: [string, Buffer, string][] = [
    ["TLS ClientHello", Buffer.from([0x16, 0x03, 0x01, 0x02]), "tls"],
    ["h2 preface", Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "h2"],
    ["partial h2 preface", Buffer.from("PRI * HT"), "incomplete"],
    ["HTTP/1 GET", Buffer.from("GET / HTTP/1.1\r\n"), "http/1.1"],
    ["HTTP/1 method not yet followed by a space", Buffer.from("DELE"), "incomplete"],
    ["unknown verb", Buffer.from("HELLO world"), "opaque"],
    ["binary", Buffer.from([0x00, 0x01, 0x02]), "opaque"],
    ["lower-case", Buffer.from("get / HTTP/1.1"), "opaque"],
    ["long upper-case run", Buffer.from("ABCDEFGHIJ"), "opaque"],
    ["empty", Buffer.alloc(0), "incomplete"],
  ];
  for (const [name, input, expected] of table) {
    it(name, () => assert.equal(classify(input), expected));
  }
});
