/**
 * HTTP/1.1 wire behaviour through a real proxy process: chunked bodies both ways with
 * trailers, pipelining, HEAD, 100-continue, keep-alive reuse, and ambiguous framing refused.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { type ProxyProcess, spawnProxy } from "./proxy-process.ts";
import { rawExchange } from "./raw-peers.ts";
import { type App, startH1App } from "./test-apps.ts";

/** Writes `text` and collects the answer until `until` holds or the proxy closes. */
async function exchange(port: number, text: string, until: (got: string) => boolean): Promise<string> {
  return (await rawExchange(port, text, { until })).text;
}

describe("HTTP/1.1 on the wire", () => {
  let app: App;
  let proxy: ProxyProcess;
  let host: string;

  before(async () => {
    app = await startH1App((req, res, body) => {
      if (req.url === "/trailers") {
        res.writeHead(200, { trailer: "x-checksum" });
        res.write("part1,");
        res.write("part2");
        res.addTrailers({ "x-checksum": "abc" });
        res.end();
        return;
      }
      res.writeHead(200, {
        "content-type": "text/plain",
        "content-length": Buffer.byteLength(`${req.method} ${req.url} ${body}`),
      });
      res.end(req.method === "HEAD" ? undefined : `${req.method} ${req.url} ${body}`);
    });
    host = `127.0.0.1:${app.port}`;
    proxy = await spawnProxy({ outbound: { listen: "127.0.0.1:0" }, admin: { listen: "127.0.0.1:0" } });
  });

  after(async () => {
    await proxy?.stop("SIGKILL");
    await app?.close();
  });

  it("streams a chunked request body and a chunked response with trailers", async () => {
    const res = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: proxy.ports.outbound,
          method: "POST",
          path: "/trailers",
          headers: { host },
        },
        (r) => {
          let body = "";
          r.setEncoding("utf8");
          r.on("data", (d: string) => {
            body += d;
          });
          r.on("end", () => resolve({ body, trailers: r.trailers }));
        },
      );
      req.on("error", reject);
      req.write("a");
      setTimeout(() => req.end("b"), 20);
    });
    assert.equal(res.body, "part1,part2");
    assert.equal(res.trailers["x-checksum"], "abc");
  });

  it("answers pipelined requests in order on one connection", async () => {
    const two = `GET /one HTTP/1.1\r\nhost: ${host}\r\n\r\nPOST /two HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 3\r\n\r\nxyz`;
    const got = await exchange(proxy.ports.outbound!, two, (g) => g.includes("POST /two xyz"));
    assert.ok(got.indexOf("GET /one ") < got.indexOf("POST /two xyz"), got);
    assert.equal(got.match(/HTTP\/1\.1 200/g)?.length, 2);
  });

  it("keeps the length of a HEAD response without a body, and sends 100 Continue", async () => {
    const head = await exchange(proxy.ports.outbound!, `HEAD /h HTTP/1.1\r\nhost: ${host}\r\n\r\n`, (g) =>
      g.includes("\r\n\r\n"),
    );
    assert.match(head, /content-length: 8/i); // "HEAD /h "
    assert.ok(head.endsWith("\r\n\r\n"));
    const cont = await exchange(
      proxy.ports.outbound!,
      `POST /c HTTP/1.1\r\nhost: ${host}\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nok`,
      (g) => g.includes("POST /c ok"),
    );
    assert.match(cont, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
  });

  it("sends no 100 Continue to an HTTP/1.0 client, which would read it as the answer", async () => {
    const got = await exchange(
      proxy.ports.outbound!,
      `POST /c10 HTTP/1.0\r\nhost: ${host}\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\nok`,
      (g) => g.includes("POST /c10 ok"),
    );
    assert.match(got, /^HTTP\/1\.1 200/);
  });

  it("ends a body of unknown length with the connection for an HTTP/1.0 client, which has no chunked coding", async () => {
    const r = await rawExchange(proxy.ports.outbound!, `GET /trailers HTTP/1.0\r\nhost: ${host}\r\n\r\n`);
    assert.ok(r.closed, r.text);
    assert.match(r.text, /^HTTP\/1\.1 200 .*connection: close\r\n/is);
    assert.doesNotMatch(r.text, /transfer-encoding/i);
    assert.ok(r.text.endsWith("\r\n\r\npart1,part2"), r.text);
  });

  it("accepts absolute-form targets from applications using it as an HTTP proxy", async () => {
    const got = await exchange(
      proxy.ports.outbound!,
      `GET http://${host}/abs?q=1 HTTP/1.1\r\nhost: ignored\r\n\r\n`,
      (g) => g.includes("GET /abs?q=1"),
    );
    assert.match(got, /^HTTP\/1\.1 200/);
  });

  it("refuses an absolute-form HTTP/1.1 request without Host or with an invalid one, as any other", async () => {
    const hits = app.hits;
    for (const hostLine of ["", "host: a b\r\n", "host:\r\n"]) {
      const got = await exchange(
        proxy.ports.outbound!,
        `GET http://${host}/abs HTTP/1.1\r\n${hostLine}\r\n`,
        (g) => g.includes("\r\n\r\n"),
      );
      assert.match(got, /^HTTP\/1\.1 400/, JSON.stringify(hostLine));
    }
    assert.equal(app.hits, hits);
  });

  it("refuses ambiguous framing instead of forwarding it", async () => {
    const smuggle = `POST / HTTP/1.1\r\nhost: ${host}\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n`;
    const hits = app.hits;
    const got = await exchange(proxy.ports.outbound!, smuggle, () => false);
    assert.match(got, /^HTTP\/1\.1 400/);
    assert.equal(app.hits, hits);
  });

  it("reuses one upstream connection for sequential keep-alive requests", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<string>();
    try {
      for (let i = 0; i < 20; i++) {
        await new Promise<void>((resolve, reject) => {
          http
            .get(
              { host: "127.0.0.1", port: proxy.ports.outbound, path: `/k${i}`, headers: { host }, agent },
              (r) => {
                r.resume();
                r.on("end", () => resolve());
                sockets.add(`${r.socket.localPort}`);
              },
            )
            .on("error", reject);
        });
      }
    } finally {
      agent.destroy();
    }
    assert.equal(sockets.size, 1);
  });
});
