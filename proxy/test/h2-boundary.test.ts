/**
 * HTTP/2 through the proxy as an intermediary (RFC 9113 §8), response side, through a real proxy
 * process: a response that fails or is cut short after its head never reaches the client as a
 * complete one, and one client cannot hold every stream an application allows. What the proxy does
 * with each HTTP/2 input is in docs/proxy.md, "HTTP/2 messages through the proxy"; the request
 * side is nghttp2's (and limits.test.ts for the header list).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { type ProxyProcess, spawnProxy, waitFor } from "./proxy-process.ts";
import { startResettingH2App } from "./raw-peers.ts";
import { type App, startH2App } from "./test-apps.ts";

describe("HTTP/2 through the proxy", () => {
  /** A plain outbound listener: it forwards to the authority itself. */
  let open: ProxyProcess;
  let h2app: App;
  let h2Host: string;

  before(async () => {
    open = await spawnProxy({ outbound: { listen: "127.0.0.1:0" }, admin: { listen: "127.0.0.1:0" } });
    h2app = await startH2App((stream, headers) => {
      // A body shorter than its content-length: a malformed response (RFC 9113 §8.1.1).
      stream.respond({ ":status": 200, "content-length": "10" });
      stream.end(headers[":path"] === "/short-body" ? "ok" : "0123456789");
    });
    h2Host = `127.0.0.1:${h2app.port}`;
  });

  after(async () => {
    await open?.stop("SIGKILL");
    await h2app?.close();
  });

  /** One stream through the proxy: how it ended, and the body it got. */
  async function h2Get(
    path: string,
    authority = h2Host,
  ): Promise<{ ended: "end" | "reset"; rstCode: number; body: string }> {
    const session = http2.connect(`http://127.0.0.1:${open.ports.outbound}`);
    session.on("error", () => {});
    try {
      return await new Promise((resolve) => {
        const s = session.request({ ":path": path, ":authority": authority });
        let body = "";
        let ended: "end" | "reset" = "reset";
        s.setEncoding("latin1");
        s.on("data", (d: string) => {
          body += d;
        });
        s.on("end", () => {
          ended = "end";
        });
        s.on("error", () => {});
        s.on("close", () => resolve({ ended, rstCode: s.rstCode ?? -1, body }));
      });
    } finally {
      session.close();
    }
  }

  it("resets the stream with an error, not NO_ERROR, when the upstream response turns out malformed after its head", async () => {
    assert.deepEqual(await h2Get("/whole"), { ended: "end", rstCode: 0, body: "0123456789" });
    // The head (content-length: 10) was forwarded before the upstream's body fell short: the
    // client must see a failed stream, not a clean end it would take for a complete response.
    const short = await h2Get("/short-body");
    assert.equal(short.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, JSON.stringify(short));
  });

  it("does not let one client's streams without a body hold every stream the upstream allows", async () => {
    // An application allowing 2 concurrent streams (Go's default is 250, nghttp2's 100).
    const small = http2.createServer({ settings: { maxConcurrentStreams: 2 } });
    let streams = 0;
    small.on("stream", (stream) => {
      streams++;
      stream.on("close", () => streams--);
      stream.on("error", () => {});
      stream.resume();
      stream.on("end", () => {
        stream.respond({ ":status": 200 });
        stream.end("ok");
      });
    });
    await new Promise<void>((r) => small.listen(0, "127.0.0.1", () => r()));
    const authority = `127.0.0.1:${(small.address() as AddressInfo).port}`;
    const hog = http2.connect(`http://127.0.0.1:${open.ports.outbound}`);
    hog.on("error", () => {});
    try {
      for (let i = 0; i < 2; i++) {
        const s = hog.request({ ":method": "POST", ":path": "/never-ends", ":authority": authority });
        s.on("error", () => {});
        s.write("x");
      }
      await waitFor(() => streams === 2, 5_000);
      // Another client's request is answered while those two stay open (before: it queued
      // behind them for as long as they lasted).
      const answer = await Promise.race([
        h2Get("/", authority),
        new Promise((r) => setTimeout(() => r("no answer within 10 s"), 10_000).unref()),
      ]);
      assert.deepEqual(answer, { ended: "end", rstCode: 0, body: "ok" });
    } finally {
      hog.destroy();
      small.close();
    }
  });

  it("resets the stream when the upstream cancels it in the middle of the body, instead of ending it", async () => {
    // node:http2 ends the body of a stream reset with CANCEL as if END_STREAM had come.
    const upstream = await startResettingH2App(http2.constants.NGHTTP2_CANCEL);
    try {
      const r = await h2Get("/cut", `127.0.0.1:${upstream.port}`);
      assert.equal(r.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR, JSON.stringify(r));
    } finally {
      await upstream.close();
    }
  });
});
