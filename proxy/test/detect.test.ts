import assert from "node:assert/strict";
import net, { type AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { classify, detect, maxDetectBytes } from "../detect.ts";

/** Runs `detect` on the server side of a loopback connection whose client writes `chunks`, 30 ms apart. */
async function detectOn(chunks: string[], timeoutMs: number): Promise<string | undefined> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const client = net.connect((server.address() as AddressInfo).port, "127.0.0.1");
  client.on("error", () => {});
  try {
    const [socket] = (await new Promise((r) => server.once("connection", (s) => r([s])))) as [net.Socket];
    for (const [i, chunk] of chunks.entries()) setTimeout(() => client.write(chunk), 30 * i);
    const found = await detect(socket, timeoutMs);
    socket.destroy();
    return found?.protocol;
  } finally {
    client.destroy();
    server.close();
  }
}

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
    // llhttp skips a bare LF or CR before a request line: HTTP, which the codec then refuses.
    ["a bare LF", Buffer.from("\nGET / HTTP/1.1"), "http/1.1"],
    ["a bare CR", Buffer.from("\rGET / HTTP/1.1"), "http/1.1"],
    ["line ends of every kind", Buffer.from("\r\n\n\r\r\nGET / HTTP/1.1"), "http/1.1"],
    ["a CR, then binary", Buffer.from("\r\x00"), "unknown"],
    ["a space first", Buffer.from(" GET / HTTP/1.1"), "unknown"],
    ["binary", Buffer.from([0x00, 0x01, 0x02]), "unknown"],
    ["a method followed by a tab", Buffer.from("GET\t/"), "unknown"],
    ["TLS-like record, other version", Buffer.from([0x16, 0x01]), "unknown"],
    ["empty", Buffer.alloc(0), "incomplete"],
  ];
  for (const [name, input, expected] of table) {
    it(name, () => assert.equal(classify(input), expected));
  }

  it("takes bytes that could still begin a request line for HTTP when the deadline or the bound ends detection", async () => {
    // A client trickling a request: relayed unread, its head would reach an application as sent.
    assert.equal(await detectOn(["G"], 200), "http/1.1");
    assert.equal(await detectOn(["\r\n".repeat(20), "\r\n".repeat(20)], 5_000), "http/1.1");
    assert.equal(
      await detectOn(["A".repeat(maxDetectBytes / 2), "A".repeat(maxDetectBytes)], 5_000),
      "http/1.1",
    );
    assert.equal(await detectOn(["\x16"], 200), "unknown");
    assert.equal(await detectOn(["\x00\x01"], 200), "unknown");
    assert.equal(await detectOn([], 200), "silent");
  });

  it("on a port declared opaque, tells only TLS apart", () => {
    assert.equal(classify(Buffer.from([0x16, 0x03, 0x01]), true), "tls");
    assert.equal(classify(Buffer.from("GET / HTTP/1.1\r\n"), true), "unknown");
  });
});
