import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  ChunkedDecoder,
  H1SyntaxError,
  HeadTooLarge,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  serializeLastChunk,
  serializeRequestHead,
} from "../h1-codec.ts";

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
    assert.deepEqual(requestFraming(p.head.headers), { kind: "length", length: 3 });
  });

  const bad: [string, string][] = [
    ["bad request line", "GET /\r\n\r\n"],
    ["space in target", "GET /a b HTTP/1.1\r\nhost: x\r\n\r\n"],
    ["HTTP/2 version", "GET / HTTP/2.0\r\nhost: x\r\n\r\n"],
    ["header without colon", "GET / HTTP/1.1\r\nhost x\r\n\r\n"],
    ["obs-fold", "GET / HTTP/1.1\r\nhost: x\r\n folded\r\n\r\n"],
    ["control character", "GET / HTTP/1.1\r\nhost: x\u0001\r\n\r\n"],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name}`, () =>
      assert.throws(() => parseRequestHead(Buffer.from(text), 1024), H1SyntaxError));
  }

  it("bounds the head size", () => {
    assert.throws(
      () => parseRequestHead(Buffer.from(`GET / HTTP/1.1\r\nx: ${"a".repeat(100)}`), 64),
      HeadTooLarge,
    );
  });

  it("refuses ambiguous request framing (smuggling)", () => {
    assert.throws(() => requestFraming({ "transfer-encoding": "chunked", "content-length": "5" }), /both/);
    assert.throws(() => requestFraming({ "content-length": "5, 6" }), /content-length/);
    assert.throws(() => requestFraming({ "transfer-encoding": "gzip" }), /transfer-encoding/);
    assert.deepEqual(requestFraming({ "content-length": "5, 5" }), { kind: "length", length: 5 });
  });

  it("frames responses by method, status and headers", () => {
    const head = (headers: Record<string, string>, status = 200) => ({ status, headers, keepAlive: true });
    assert.deepEqual(responseFraming("HEAD", head({ "content-length": "10" })), { kind: "none" });
    assert.deepEqual(responseFraming("GET", head({}, 204)), { kind: "none" });
    assert.deepEqual(responseFraming("GET", head({ "transfer-encoding": "chunked" })), { kind: "chunked" });
    assert.deepEqual(responseFraming("GET", head({ "content-length": "7" })), { kind: "length", length: 7 });
    assert.deepEqual(responseFraming("GET", head({})), { kind: "close" });
  });

  it("parses response heads, HTTP/1.0 keep-alive and set-cookie lists", () => {
    const r = parseResponseHead(
      Buffer.from("HTTP/1.0 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"),
      1024,
    )!;
    assert.equal(r.head.keepAlive, false);
    assert.deepEqual(r.head.headers["set-cookie"], ["a=1", "b=2"]);
    assert.throws(() => parseResponseHead(Buffer.from("HTTX/1.1 200 OK\r\n\r\n"), 1024), H1SyntaxError);
  });

  it("decodes chunked bodies split anywhere, with trailers", () => {
    const wire = Buffer.from("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\nNEXT");
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
    assert.throws(() => new ChunkedDecoder().feed(Buffer.from("zz\r\n"), () => {}), /chunk size/);
  });

  it("serializes heads and refuses values that would split them", () => {
    const head = serializeRequestHead("GET", "/x", "a:80", { accept: ["a", "b"] }, "");
    assert.equal(head, "GET /x HTTP/1.1\r\nhost: a:80\r\naccept: a\r\naccept: b\r\n\r\n");
    assert.throws(() => serializeRequestHead("GET", "/x", "a", { evil: "1\r\nx: 2" }, ""), H1SyntaxError);
    assert.equal(serializeLastChunk({ "grpc-status": "0" }), "0\r\ngrpc-status: 0\r\n\r\n");
  });
});
