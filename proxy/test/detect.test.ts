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
    ["an extension method (WebDAV)", Buffer.from("PROPFIND / HTTP/1.1\r\n"), "http/1.1"],
    ["any token method", Buffer.from("HELLO world"), "http/1.1"],
    ["a lower-case method", Buffer.from("get / HTTP/1.1"), "http/1.1"],
    ["a long method", Buffer.from(`${"A".repeat(40)} / HTTP/1.1`), "http/1.1"],
    ["an empty line before the request line", Buffer.from("\r\nGET / HTTP/1.1"), "http/1.1"],
    ["only empty lines so far", Buffer.from("\r\n\r\n"), "incomplete"],
    ["a CR so far", Buffer.from("\r"), "incomplete"],
    ["a bare LF", Buffer.from("\nGET / HTTP/1.1"), "unknown"],
    ["a bare CR", Buffer.from("\rGET / HTTP/1.1"), "unknown"],
    ["a space first", Buffer.from(" GET / HTTP/1.1"), "unknown"],
    ["binary", Buffer.from([0x00, 0x01, 0x02]), "unknown"],
    ["a method followed by a tab", Buffer.from("GET\t/"), "unknown"],
    ["TLS-like record, other version", Buffer.from([0x16, 0x01]), "unknown"],
    ["empty", Buffer.alloc(0), "incomplete"],
  ];
  for (const [name, input, expected] of table) {
    it(name, () => assert.equal(classify(input), expected));
  }

  it("on a port declared opaque, tells only TLS apart", () => {
    assert.equal(classify(Buffer.from([0x16, 0x03, 0x01]), true), "tls");
    assert.equal(classify(Buffer.from("GET / HTTP/1.1\r\n"), true), "unknown");
  });
});
