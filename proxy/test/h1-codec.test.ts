/**
 * The HTTP/1.1 codec as pure functions: every row of the framing table in docs/proxy.md
 * ("HTTP/1.1 framing") that the codec decides has a case here; the wire tests
 * (h1-wire.test.ts, framing-differential.test.ts) check the same through real processes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChunkedDecoder } from "../h1-chunked.ts";
import {
  H1SyntaxError,
  HeadTooLarge,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  requestTarget,
  responseFraming,
  serializeLastChunk,
  serializeRequestHead,
} from "../h1-codec.ts";

const request = (text: string) => parseRequestHead(Buffer.from(text, "latin1"), 1024);
const response = (text: string) => parseResponseHead(Buffer.from(text, "latin1"), 1024);
const v11 = (headers: Record<string, string>) => ({ headers, version: "HTTP/1.1" as const });

function decodeChunked(text: string): { body: string; rest: string; trailers: unknown } {
  const d = new ChunkedDecoder();
  const wire = Buffer.from(text, "latin1");
  const out: Buffer[] = [];
  const used = d.feed(wire, (b) => out.push(Buffer.from(b)));
  return {
    body: Buffer.concat(out).toString("latin1"),
    rest: d.done ? wire.subarray(used).toString("latin1") : "(not done)",
    trailers: d.trailers,
  };
}

describe("HTTP/1.1 codec", () => {
  it("parses a request head and waits for the rest", () => {
    const raw = Buffer.from(
      "POST /a?b=1 HTTP/1.1\r\nHost: x:80\r\nX-A: 1\r\nx-a: 2\r\nContent-Length: 3\r\n\r\nabc",
    );
    assert.equal(parseRequestHead(raw.subarray(0, 20), 1024), undefined);
    const p = parseRequestHead(raw, 1024)!;
    assert.equal(p.head.method, "POST");
    assert.equal(p.head.target, "/a?b=1");
    assert.equal(p.head.headers["x-a"], "1, 2");
    assert.equal(p.head.keepAlive, true);
    assert.equal(raw.subarray(p.consumed).toString(), "abc");
    assert.deepEqual(requestFraming(p.head), { kind: "length", length: 3 });
  });

  it("accepts any token method, obs-text in values, and trims only spaces and tabs", () => {
    const p = request("PROPFIND /x HTTP/1.1\r\nHost: a\r\nX: \tcaf\xe9\xa0\t \r\n\r\n")!;
    assert.equal(p.head.method, "PROPFIND");
    assert.equal(p.head.headers.x, "caf\xe9\xa0");
    assert.equal(request("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n")!.head.method, "M-SEARCH");
  });

  it("skips empty lines before the request line (RFC 9112 §2.2)", () => {
    const p = request("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")!;
    assert.equal(p.head.method, "GET");
    assert.equal(p.consumed, 4 + "GET / HTTP/1.1\r\nHost: a\r\n\r\n".length);
    assert.equal(request("\r"), undefined);
  });

  const bad: [string, string][] = [
    ["a bad request line", "GET /\r\n\r\n"],
    ["a space in the target", "GET /a b HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["two spaces in the request line", "GET  / HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["HTTP/2.0 as a version", "GET / HTTP/2.0\r\nhost: x\r\n\r\n"],
    ["HTTP/1.2", "GET / HTTP/1.2\r\nhost: x\r\n\r\n"],
    ["a header without colon", "GET / HTTP/1.1\r\nhost x\r\n\r\n"],
    ["whitespace before the colon", "GET / HTTP/1.1\r\nhost : x\r\n\r\n"],
    ["an empty field name", "GET / HTTP/1.1\r\n: x\r\n\r\n"],
    ["obs-fold", "GET / HTTP/1.1\r\nhost: x\r\n folded\r\n\r\n"],
    ["a control character in a value", "GET / HTTP/1.1\r\nhost: x\u0001\r\n\r\n"],
    ["NUL in a value", "GET / HTTP/1.1\r\nhost: x\r\nx: a\u0000b\r\n\r\n"],
    ["DEL in a value", "GET / HTTP/1.1\r\nhost: x\r\nx: a\u007fb\r\n\r\n"],
    ["a bare LF ending the request line", "GET / HTTP/1.1\nhost: x\r\n\r\n"],
    ["a bare LF inside a field line", "GET / HTTP/1.1\r\nhost: x\nx: y\r\n\r\n"],
    ["a bare LF ending the head", "GET / HTTP/1.1\r\nhost: x\r\n\n"],
    ["a bare CR inside a field line", "GET / HTTP/1.1\r\nhost: x\rx: y\r\n\r\n"],
    ["a bare LF before the request line", "\nGET / HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["a bare CR before the request line", "\rGET / HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["a lower-case method with obs-text", "g\xe9t / HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["obs-text in the target", "GET /\xe9 HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["two Host lines", "GET / HTTP/1.1\r\nhost: a\r\nHost: b\r\n\r\n"],
    [
      "a tab after a Transfer-Encoding value",
      "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\t\r\n\r\n",
    ],
    ["a tab after a Content-Length value", "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1 \t\r\n\r\n"],
    [
      "two Content-Length lines, even equal",
      "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
    ],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name}`, () => assert.throws(() => request(text), H1SyntaxError));
  }

  it("bounds the head size", () => {
    assert.throws(
      () => parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nx: ${"a".repeat(100)}`), 64),
      HeadTooLarge,
    );
    assert.throws(() => parseRequestHead(Buffer.from(`${"\r\n".repeat(40)}GET`), 64), HeadTooLarge);
  });

  it("refuses ambiguous request framing (smuggling)", () => {
    assert.throws(
      () => requestFraming(v11({ "transfer-encoding": "chunked", "content-length": "5" })),
      /both/,
    );
    assert.throws(() => requestFraming(v11({ "content-length": "5, 6" })), /content-length/);
    assert.throws(() => requestFraming(v11({ "content-length": "5, 5" })), /content-length/);
    assert.throws(() => requestFraming(v11({ "content-length": "+5" })), /content-length/);
    assert.throws(() => requestFraming(v11({ "content-length": "9999999999999999" })), /content-length/);
    assert.throws(() => requestFraming(v11({ "transfer-encoding": "gzip" })), /transfer-encoding/);
    assert.throws(() => requestFraming(v11({ "transfer-encoding": "gzip, chunked" })), /transfer-encoding/);
    assert.throws(
      () => requestFraming(v11({ "transfer-encoding": "chunked, chunked" })),
      /transfer-encoding/,
    );
    assert.throws(
      () => requestFraming({ headers: { "transfer-encoding": "chunked" }, version: "HTTP/1.0" }),
      /HTTP\/1\.0/,
    );
    assert.deepEqual(requestFraming(v11({ "transfer-encoding": "Chunked" })), { kind: "chunked" });
    assert.deepEqual(requestFraming(v11({ "content-length": "005" })), { kind: "length", length: 5 });
  });

  it("takes the authority from an absolute-form target, else the one Host; refuses the rest", () => {
    const head = (target: string, headers: Record<string, string>, method = "GET") =>
      request(
        `${method} ${target} HTTP/1.1\r\n${Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join("")}\r\n`,
      )!.head;
    assert.deepEqual(requestTarget(head("/p?q", { host: "a:80" })), { authority: "a:80", path: "/p?q" });
    assert.deepEqual(requestTarget(head("HTTP://b:81/p", { host: "a" })), { authority: "b:81", path: "/p" });
    assert.deepEqual(requestTarget(head("http://[::1]:81", { host: "[::1]:81" })), {
      authority: "[::1]:81",
      path: "/",
    });
    assert.deepEqual(requestTarget(head("http://b?q=1", { host: "b" })), { authority: "b", path: "/?q=1" });
    // Host may be missing in HTTP/1.0 only (RFC 9112 §3.2).
    const old = request("GET http://b/p HTTP/1.0\r\n\r\n")!.head;
    assert.deepEqual(requestTarget(old), { authority: "b", path: "/p" });
    assert.deepEqual(requestTarget(head("*", { host: "a" }, "OPTIONS")), { authority: "a", path: "*" });
    for (const [target, headers] of [
      ["/", {}],
      ["/", { host: "" }],
      ["/", { host: "a b" }],
      ["/", { host: "a,b" }],
      ["/", { host: "user@a" }],
      ["http://user@a/", {}],
      ["http://a/", {}],
      ["http://a/", { host: "a b" }],
      ["http://a/", { host: "" }],
      ["https://a/", { host: "a" }],
      ["a:80", { host: "a" }],
      ["*", { host: "a" }],
    ] as [string, Record<string, string>][]) {
      assert.throws(
        () => requestTarget(head(target, headers)),
        H1SyntaxError,
        `${target} ${JSON.stringify(headers)}`,
      );
    }
  });

  it("frames responses by method, status and headers", () => {
    const head = (headers: Record<string, string>, status = 200) => ({ status, headers, keepAlive: true });
    assert.deepEqual(responseFraming("HEAD", head({ "content-length": "10" })), { kind: "none" });
    assert.deepEqual(responseFraming("GET", head({}, 204)), { kind: "none" });
    assert.deepEqual(responseFraming("GET", head({ "transfer-encoding": "chunked" })), { kind: "chunked" });
    assert.deepEqual(responseFraming("GET", head({ "content-length": "7" })), { kind: "length", length: 7 });
    assert.deepEqual(responseFraming("GET", head({})), { kind: "close" });
  });

  it("refuses ambiguous response framing (response splitting)", () => {
    const head = (headers: Record<string, string>) => ({ status: 200, headers, keepAlive: true });
    const refused: Record<string, string>[] = [
      { "transfer-encoding": "chunked", "content-length": "0" },
      { "transfer-encoding": "gzip" },
      { "transfer-encoding": "gzip, chunked" },
      { "content-length": "2, 2" },
      { "content-length": "-1" },
    ];
    for (const h of refused)
      assert.throws(() => responseFraming("GET", head(h)), H1SyntaxError, JSON.stringify(h));
  });

  it("parses response heads, HTTP/1.0 keep-alive and set-cookie lists", () => {
    const r = response("HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n")!;
    assert.equal(r.head.keepAlive, false);
    assert.deepEqual(r.head.headers["set-cookie"], ["a=1", "b=2"]);
    assert.equal(response("HTTP/1.1 200\r\n\r\n")!.head.status, 200);
    assert.equal(response("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\n\r\n")!.head.keepAlive, false);
  });

  const badResponses: [string, string][] = [
    ["a bad protocol", "HTTX/1.1 200 OK\r\n\r\n"],
    ["a status under 100", "HTTP/1.1 099 X\r\n\r\n"],
    ["a bare LF ending the head", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\n"],
    ["bare LFs only", "HTTP/1.1 200 OK\ncontent-length: 0\n\n"],
    ["a control character in a value", "HTTP/1.1 200 OK\r\nx: a\u0001b\r\n\r\n"],
    ["a control character in the reason", "HTTP/1.1 200 O\u0001K\r\n\r\n"],
    ["obs-fold", "HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n"],
    ["whitespace before the colon", "HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n"],
    ["two Content-Length lines", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n"],
  ];
  for (const [name, text] of badResponses) {
    it(`refuses a response head with ${name}`, () => assert.throws(() => response(text), H1SyntaxError));
  }

  it("decodes chunked bodies split anywhere, with extensions and trailers", () => {
    const wire = Buffer.from('5;ext=1;q="a b"\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\nNEXT');
    for (let split = 1; split < wire.length - 4; split++) {
      const d = new ChunkedDecoder();
      const out: Buffer[] = [];
      const used = d.feed(wire.subarray(0, split), (b) => out.push(Buffer.from(b)));
      assert.equal(used, split);
      const used2 = d.feed(wire.subarray(split), (b) => out.push(Buffer.from(b)));
      assert.ok(d.done);
      assert.equal(Buffer.concat(out).toString(), "hello world");
      assert.equal(wire.subarray(split + used2).toString(), "NEXT");
      assert.deepEqual(d.trailers, { "grpc-status": "0" });
    }
  });

  const badChunks: [string, string][] = [
    ["a non-hex size", "zz\r\n"],
    ["0x before the size", "0x3\r\nabc\r\n0\r\n\r\n"],
    ["a bare LF after the size", "3\nabc\r\n0\r\n\r\n"],
    ["a bare LF ending an extension", "3;a=b\nabc\r\n0\r\n\r\n"],
    ["a bare CR in an extension", "3;a\r=b\r\nabc\r\n0\r\n\r\n"],
    ["whitespace after the size", "3 \r\nabc\r\n0\r\n\r\n"],
    ["whitespace in an extension", "3; a=b\r\nabc\r\n0\r\n\r\n"],
    ["a control character in an extension value", '3;a="\u0001"\r\nabc\r\n0\r\n\r\n'],
    ["a bare LF after the data", "3\r\nabc\n0\r\n\r\n"],
    ["data longer than its size", "3\r\nabcd\r\n0\r\n\r\n"],
    ["a bare LF ending a trailer", "0\r\nx: y\n\r\n"],
    ["a bare LF ending the body", "0\r\n\n"],
    ["a malformed trailer", "0\r\nx y\r\n\r\n"],
    ["Transfer-Encoding in trailers", "0\r\nTransfer-Encoding: chunked\r\n\r\n"],
    ["Content-Length in trailers", "0\r\nContent-Length: 5\r\n\r\n"],
    ["a size past 12 hex digits", "1000000000000\r\n"],
  ];
  for (const [name, text] of badChunks) {
    it(`refuses a chunked body with ${name}`, () => assert.throws(() => decodeChunked(text), H1SyntaxError));
  }

  it("serializes heads and refuses values that would split them", () => {
    const head = serializeRequestHead("GET", "/x", "a:80", { accept: ["a", "b"] }, "");
    assert.equal(head, "GET /x HTTP/1.1\r\nhost: a:80\r\naccept: a\r\naccept: b\r\n\r\n");
    assert.throws(() => serializeRequestHead("GET", "/x", "a", { evil: "1\r\nx: 2" }, ""), H1SyntaxError);
    assert.equal(serializeLastChunk({ "grpc-status": "0" }), "0\r\ngrpc-status: 0\r\n\r\n");
  });
});
