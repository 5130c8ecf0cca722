/**
 * The proxy as a security boundary (issue 18), through real proxy processes: the connection
 * policy holds for every protocol (HTTP/1.1, HTTP/2, opaque) and every first byte, headers the
 * proxy owns are never taken from a client, and HTTP/1.1 framing is read as RFC 9112 asks of an
 * intermediary, request and response side. Each finding of the issue has a case here, over the
 * mTLS pair and over a plaintext inbound listener; the application behind them records every byte
 * that reaches it.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { generateKeyPair, privateKeyToPem } from "../../pki/index.ts";
import { opensslOrThrow } from "../../pki/testing/openssl-cli.ts";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { type MeshCa, serverCredentials } from "./mesh-pki.ts";
import { type ProxyProcess, spawnProxy } from "./proxy-process.ts";
import { type HostileApp, rawExchange, startGreetingApp, startHostileApp, statusLines } from "./raw-peers.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const clientId = `${td}/client`;
const serverId = `${td}/server`;
const intruderId = `${td}/intruder`;
const web = "web.default.svc.cluster.local:80";
const detectTimeoutMs = 600;

let serial = 1;

/** A key and chain from the mesh issuer whose leaf has exactly `extensions` (openssl, not pki/). */
function opensslLeaf(ca: MeshCa, extensions: string): { key: string; cert: string } {
  const key = privateKeyToPem(generateKeyPair().privateKey);
  const csr = opensslOrThrow(["req", "-new", "-key", "leaf.key", "-subj", "/CN=leaf"], { "leaf.key": key });
  const files = {
    "leaf.csr": csr,
    "issuer.pem": ca.issuer.pem,
    "issuer.key": privateKeyToPem(ca.signer.privateKey),
    "ext.cnf": extensions,
  };
  const args = ["x509", "-req", "-in", "leaf.csr", "-CA", "issuer.pem", "-CAkey", "issuer.key"];
  const cert = opensslOrThrow(
    [...args, "-set_serial", String(serial++), "-days", "1", "-extfile", "ext.cnf"],
    files,
  );
  return { key, cert: cert + ca.issuer.pem };
}

describe("the proxy's trust boundary", () => {
  let mesh: MeshFixture;
  let app: HostileApp;
  let greeting: { port: number; close(): Promise<void> };
  /** mTLS inbound, policy: only `clientId`; plaintext allowed (and so refused by the policy). */
  let server: ProxyProcess;
  let client: ProxyProcess;
  let intruder: ProxyProcess;
  /** No identity: plaintext inbound with no policy, and an outbound listener. */
  let open: ProxyProcess;
  /** Plaintext inbound to a server-first application on a port declared opaque. */
  let opaque: ProxyProcess;
  let appHost: string;
  const creds = (id: string, alpn: string) => ({ ...serverCredentials(mesh.ca, id), ALPNProtocols: [alpn] });
  const limits = { detectTimeoutMs, headerTimeoutMs: 3_000 };

  before(async () => {
    mesh = await startMeshFixture("boundary", { client: clientId, server: serverId, intruder: intruderId });
    [app, greeting] = await Promise.all([startHostileApp(), startGreetingApp("220 ready\r\n")]);
    appHost = `127.0.0.1:${app.port}`;
    const admin = { listen: "127.0.0.1:0" };
    [server, open, opaque] = await Promise.all([
      spawnProxy({
        inbound: {
          listen: "127.0.0.1:0",
          app: appHost,
          allowPlaintext: true,
          authorizedIdentities: [clientId],
        },
        admin,
        identity: mesh.identityConfig("server"),
        // The TLS handshake shares the detection deadline: leave it room on a loaded machine.
        limits: { ...limits, detectTimeoutMs: 3_000 },
      }),
      spawnProxy({
        inbound: { listen: "127.0.0.1:0", app: appHost, allowPlaintext: true },
        outbound: { listen: "127.0.0.1:0" },
        admin,
        limits,
      }),
      spawnProxy({
        inbound: {
          listen: "127.0.0.1:0",
          app: `127.0.0.1:${greeting.port}`,
          allowPlaintext: true,
          opaquePorts: [greeting.port],
        },
        admin,
        limits,
      }),
    ]);
    mesh.destination.set(web, {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: serverId }],
    });
    const outbound = (workload: string) => ({
      outbound: { listen: "127.0.0.1:0", opaqueAuthority: web },
      admin,
      identity: mesh.identityConfig(workload),
      destination: { url: mesh.destination.url },
    });
    [client, intruder] = await Promise.all([
      spawnProxy(outbound("client")),
      spawnProxy(outbound("intruder")),
    ]);
  });

  after(async () => {
    await Promise.all([server, client, intruder, open, opaque].map((p) => p?.stop("SIGKILL")));
    await Promise.all([app?.close(), greeting?.close(), mesh?.close()]);
  });

  /** Runs `fn` and returns the bytes that reached the application meanwhile. */
  async function reachingApp(fn: () => Promise<unknown>): Promise<string> {
    const before = app.received().length;
    await fn();
    return app.received().slice(before);
  }

  describe("connection policy", () => {
    it("lets no byte of a refused identity through the opaque ALPN, forged trellis-client-id or not", async () => {
      const forged = `GET /admin HTTP/1.1\r\nhost: ${web}\r\ntrellis-client-id: ${clientId}\r\n\r\n`;
      let r = { text: "", closed: false, ms: 0 };
      const reached = await reachingApp(async () => {
        r = await rawExchange(server.ports.inbound!, forged, { tls: creds(intruderId, "trellis.opaque") });
      });
      assert.equal(reached, "");
      // HTTP inside the opaque stream is read as HTTP: the proxy itself answers 403.
      assert.ok(r.closed, "still open");
      for (const status of statusLines(r.text)) assert.equal(status, "HTTP/1.1 403", r.text);
      // The same through the intruder's own proxy, which relays its non-HTTP bytes as opaque.
      const relayed = await reachingApp(() =>
        rawExchange(intruder.ports.outbound!, "\x01hello\r\n", { until: (t) => t.length > 0 }),
      );
      assert.equal(relayed, "");
    });

    it("reads HTTP inside an authorized peer's opaque stream as HTTP: trellis-client-id comes from its certificate", async () => {
      const forged = `GET /inside HTTP/1.1\r\nhost: ${web}\r\ntrellis-client-id: spiffe://forged\r\n\r\n`;
      const reached = await reachingApp(async () => {
        const r = await rawExchange(server.ports.inbound!, forged, {
          tls: creds(clientId, "trellis.opaque"),
          until: (t) => t.includes("client="),
        });
        assert.match(r.text, new RegExp(`GET /inside host=${web} client=${clientId}$`));
      });
      assert.ok(!reached.includes("forged"), reached);
    });

    it("reads a request after bare line ends in an authorized peer's opaque stream as HTTP, not as bytes to relay", async () => {
      // llhttp (node:http) skips a bare LF or CR before a request line; relayed unread, the forged
      // header would reach such an application as sent.
      for (const lineEnd of ["\n", "\r", "\r\n\n"]) {
        const forged = `${lineEnd}GET /inside HTTP/1.1\r\nhost: ${web}\r\ntrellis-client-id: spiffe://forged\r\n\r\n`;
        const reached = await reachingApp(() =>
          rawExchange(server.ports.inbound!, forged, {
            tls: creds(clientId, "trellis.opaque"),
            until: (t) => t.includes("\r\n\r\n"),
          }),
        );
        assert.ok(!reached.includes("forged"), `${JSON.stringify(lineEnd)}: ${reached}`);
      }
    });

    it("answers HTTP/1.1 and HTTP/2 from a refused identity with 403, and nothing reaches the application", async () => {
      const reached = await reachingApp(async () => {
        const r = await rawExchange(server.ports.inbound!, `GET /h1 HTTP/1.1\r\nhost: ${web}\r\n\r\n`, {
          tls: creds(intruderId, "http/1.1"),
          until: (t) => t.includes("\r\n\r\n"),
        });
        assert.match(r.text, /^HTTP\/1\.1 403 .*trellis-proxy-error: Forbidden/s);
        const session = http2.connect(`https://127.0.0.1:${server.ports.inbound}`, {
          ...creds(intruderId, "h2"),
          rejectUnauthorized: false,
        });
        try {
          const status = await new Promise<unknown>((resolve, reject) => {
            const s = session.request({ ":path": "/h2", ":authority": web });
            s.on("response", (h) => resolve(h[":status"]));
            s.on("error", reject);
            s.end();
          });
          assert.equal(status, 403);
        } finally {
          session.close();
        }
      });
      assert.equal(reached, "");
    });

    it("refuses a client certificate that is not an X.509-SVID leaf, whatever SPIFFE ID it carries", async () => {
      const leaf = (san: string, constraints = "CA:FALSE", usage = "digitalSignature") =>
        opensslLeaf(
          mesh.ca,
          `basicConstraints=critical,${constraints}\nkeyUsage=critical,${usage}\nsubjectAltName=${san}\n`,
        );
      const get = `GET /svid HTTP/1.1\r\nhost: ${web}\r\n\r\n`;
      const send = (c: { key: string; cert: string }) =>
        rawExchange(server.ports.inbound!, get, {
          tls: { ...c, ALPNProtocols: ["http/1.1"] },
          until: (t) => t.includes("client="),
        });
      // The same certificate maker, with a well-formed leaf: served.
      const good = await send(leaf(`URI:${clientId}`));
      assert.match(good.text, new RegExp(`^HTTP/1\\.1 200 .*client=${clientId}$`, "s"));
      // SPIFFE X509-SVID §2 and §5.2: each of these MUST be rejected by a validator.
      const cases: [string, { key: string; cert: string }][] = [
        ["two URI SANs", leaf(`URI:${clientId},URI:${intruderId}`)],
        ["a URI SAN beside the SPIFFE ID", leaf(`URI:https://example.com/,URI:${clientId}`)],
        ["a dot segment", leaf(`URI:${clientId}/../client`)],
        ["a query", leaf(`URI:${clientId}?admin=1`)],
        ["a CA certificate", leaf(`URI:${clientId}`, "CA:TRUE", "digitalSignature,keyCertSign")],
        ["keyCertSign on a leaf", leaf(`URI:${clientId}`, "CA:FALSE", "digitalSignature,keyCertSign")],
      ];
      for (const [name, c] of cases) {
        const reached = await reachingApp(async () => {
          const r = await send(c);
          assert.ok(r.closed && r.text === "", `${name}: ${r.text}`);
        });
        assert.equal(reached, "", `${name} reached the application`);
      }
    });

    it("refuses plaintext the policy does not admit, whatever its first bytes", async () => {
      const cases: [string, string, { delayMs?: number }][] = [
        ["an empty line first", `\r\nGET /crlf HTTP/1.1\r\nhost: ${web}\r\n\r\n`, {}],
        ["an extension method", `PROPFIND /dav HTTP/1.1\r\nhost: ${web}\r\n\r\n`, {}],
        ["a lower-case method", `get /lower HTTP/1.1\r\nhost: ${web}\r\n\r\n`, {}],
        ["silence first", `GET /late HTTP/1.1\r\nhost: ${web}\r\n\r\n`, { delayMs: detectTimeoutMs * 5 }],
        ["binary", "\x00\x01\x02GET /bin", {}],
      ];
      for (const [name, bytes, o] of cases) {
        const reached = await reachingApp(async () => {
          const r = await rawExchange(server.ports.inbound!, `${bytes}`, { ...o, waitMs: 8_000 });
          assert.ok(r.closed, `${name}: still open`);
          for (const status of statusLines(r.text))
            assert.equal(status, "HTTP/1.1 403", `${name}: ${r.text}`);
        });
        assert.equal(reached, "", `${name} reached the application`);
      }
    });

    it("serves plaintext HTTP that detection used to miss as HTTP, so a forged trellis-client-id is stripped", async () => {
      for (const bytes of [
        `\r\nGET /crlf HTTP/1.1\r\nhost: ${appHost}\r\ntrellis-client-id: spiffe://forged\r\n\r\n`,
        `PROPFIND /dav HTTP/1.1\r\nhost: ${appHost}\r\ntrellis-client-id: spiffe://forged\r\n\r\n`,
        `get /lower HTTP/1.1\r\nhost: ${appHost}\r\ntrellis-client-id: spiffe://forged\r\n\r\n`,
      ]) {
        const reached = await reachingApp(async () => {
          const r = await rawExchange(open.ports.inbound!, bytes, { until: (t) => t.includes("client=") });
          assert.match(r.text, /^HTTP\/1\.1 200 .* client=-$/s);
        });
        assert.ok(!reached.includes("forged"), reached);
      }
    });

    it("strips the owned headers spelt with underscores, which CGI-style applications read as trellis-*", async () => {
      const forged = "trellis_client_id: spiffe://forged\r\ntrellis_client-id: spiffe://forged\r\n";
      for (const [port, host, id] of [
        [open.ports.inbound!, appHost, "-"],
        [client.ports.outbound!, web, clientId],
      ] as const) {
        const reached = await reachingApp(async () => {
          const r = await rawExchange(port, `GET /cgi HTTP/1.1\r\nhost: ${host}\r\n${forged}\r\n`, {
            until: (t) => t.includes("client="),
          });
          assert.match(r.text, new RegExp(`^HTTP/1\\.1 200 .* client=${id}$`, "s"));
        });
        assert.match(reached, /GET \/cgi/);
        assert.ok(!reached.includes("forged"), reached);
      }
    });

    it("drops trellis-client-id from an upstream's response trailers, as from its response headers", async () => {
      for (const [port, host] of [
        [open.ports.inbound!, appHost],
        [client.ports.outbound!, web],
      ] as const) {
        const r = await rawExchange(port, `GET /owned-trailers HTTP/1.1\r\nhost: ${host}\r\n\r\n`, {
          until: (t) => /\r\n0\r\n(.*\r\n)*\r\n$/.test(t),
        });
        assert.match(r.text, /^HTTP\/1\.1 200 .*\r\nx-checksum: 1\r\n\r\n$/s);
        assert.ok(!r.text.includes("forged"), r.text);
      }
    });

    it("refuses bytes that are not HTTP, and silence, on an inbound port not declared opaque", async () => {
      const reached = await reachingApp(async () => {
        const binary = await rawExchange(open.ports.inbound!, "\x01\x02hello\r\n\r\n");
        assert.ok(binary.closed);
        assert.match(binary.text, /^HTTP\/1\.1 400/);
        const silent = await rawExchange(
          open.ports.inbound!,
          `GET /late HTTP/1.1\r\nhost: ${appHost}\r\n\r\n`,
          {
            delayMs: detectTimeoutMs * 5,
            waitMs: 8_000,
          },
        );
        assert.ok(silent.closed && silent.text === "", silent.text);
      });
      assert.equal(reached, "");
    });

    it("relays a port declared opaque without reading it: a server-first protocol gets its greeting", async () => {
      const r = await rawExchange(opaque.ports.inbound!, "", {
        until: (t) => t.includes("220 ready"),
        waitMs: 8_000,
      });
      assert.match(r.text, /^220 ready/);
      const echo = await rawExchange(opaque.ports.inbound!, "EHLO mesh\r\n", {
        until: (t) => t.includes("EHLO"),
      });
      assert.equal(echo.text, "220 ready\r\nEHLO mesh\r\n");
    });

    it("treats any token method as HTTP on the outbound side, and answers bytes that are not HTTP with 400", async () => {
      const dav = await rawExchange(
        open.ports.outbound!,
        `PROPFIND /dav HTTP/1.1\r\nhost: ${appHost}\r\n\r\n`,
        {
          until: (t) => t.includes("client="),
        },
      );
      assert.match(dav.text, /^HTTP\/1\.1 200 .*PROPFIND \/dav/s);
      const binary = await rawExchange(open.ports.outbound!, "\x01\x02hello\r\n\r\n");
      assert.ok(binary.closed);
      assert.match(binary.text, /^HTTP\/1\.1 400/);
    });
  });

  describe("HTTP/1.1 framing", () => {
    /** Sends `requests` on one connection to `port` and returns everything answered. */
    const exchange = (port: number, requests: string, until?: (t: string) => boolean) =>
      rawExchange(port, requests, { until, waitMs: 8_000 });
    const get = (path: string, host: string, extra = "") =>
      `GET ${path} HTTP/1.1\r\nhost: ${host}\r\n${extra}\r\n`;

    it("refuses a response with Transfer-Encoding and Content-Length instead of forging a second response", async () => {
      for (const [port, host] of [
        [open.ports.outbound!, appHost],
        [client.ports.outbound!, web],
      ] as const) {
        const r = await exchange(port, get("/te-cl", host) + get("/next", host), (t) =>
          t.includes("GET /next"),
        );
        assert.deepEqual(statusLines(r.text), ["HTTP/1.1 502", "HTTP/1.1 200"], r.text);
        assert.ok(!r.text.includes("forged"), r.text);
        // Bytes after a whole response: that upstream connection is not used again.
        const extra = await exchange(port, get("/extra-bytes", host) + get("/next", host), (t) =>
          t.includes("GET /next"),
        );
        assert.deepEqual(statusLines(extra.text), ["HTTP/1.1 200", "HTTP/1.1 200"], extra.text);
        assert.ok(!extra.text.includes("forged"), extra.text);
      }
    });

    it("closes an upstream connection after an HTTP/1.0 response with Transfer-Encoding, keep-alive or not", async () => {
      // An application of its own, so the pool to it starts empty.
      const fresh = await startHostileApp();
      try {
        const host = `127.0.0.1:${fresh.port}`;
        const r = await exchange(open.ports.outbound!, get("/http10-te", host) + get("/next", host), (t) =>
          t.includes("GET /next"),
        );
        assert.deepEqual(statusLines(r.text), ["HTTP/1.1 200", "HTTP/1.1 200"], r.text);
        assert.equal(fresh.connections(), 2, "the connection of the HTTP/1.0 response was reused");
      } finally {
        await fresh.close();
      }
    });

    it("refuses chunked framing with a bare LF: 400 for a request, 502 for a response", async () => {
      for (const body of ["3\nabc\r\n0\r\n\r\n", "3;a=b\nabc\r\n0\r\n\r\n", "3\r\nabc\n0\r\n\r\n"]) {
        for (const port of [open.ports.outbound!, open.ports.inbound!]) {
          const reached = await reachingApp(async () => {
            const r = await exchange(
              port,
              `POST /lf HTTP/1.1\r\nhost: ${appHost}\r\ntransfer-encoding: chunked\r\n\r\n${body}`,
            );
            assert.match(r.text, /^HTTP\/1\.1 400/, JSON.stringify(body));
            assert.ok(r.closed);
          });
          assert.ok(!reached.includes("abc"), reached);
        }
      }
      for (const path of ["/chunk-lf", "/chunk-ext-lf"]) {
        const r = await exchange(open.ports.outbound!, get(path, appHost), (t) => t.includes("\r\n\r\n"));
        assert.match(r.text, /^HTTP\/1\.1 502/, `${path}: ${r.text}`);
      }
    });

    it("refuses a request without Host or with two on the inbound side, as the outbound side does", async () => {
      const bad = ["GET /nohost HTTP/1.1\r\n\r\n", "GET /twohosts HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n"];
      const reached = await reachingApp(async () => {
        for (const request of bad) {
          for (const [port, tls] of [
            [open.ports.inbound!, undefined],
            [open.ports.outbound!, undefined],
            [server.ports.inbound!, creds(clientId, "http/1.1")],
          ] as const) {
            const r = await rawExchange(port, request, { tls, until: (t) => t.includes("\r\n\r\n") });
            assert.match(r.text, /^HTTP\/1\.1 400/, `${request} on ${port}: ${r.text}`);
          }
        }
      });
      assert.equal(reached, "");
    });

    it("answers 502 for control characters in an upstream's header values", async () => {
      for (const [port, host] of [
        [open.ports.outbound!, appHost],
        [client.ports.outbound!, web],
      ] as const) {
        const r = await exchange(port, get("/ctrl-value", host), (t) => t.includes("\r\n\r\n"));
        assert.match(r.text, /^HTTP\/1\.1 502/, r.text);
        assert.ok(!r.text.includes("x-evil"), r.text);
      }
    });

    it("answers 502 at once for an upstream head ending in a bare LF, instead of hanging", async () => {
      const r = await exchange(open.ports.outbound!, get("/lf-head", appHost), (t) => t.includes("\r\n\r\n"));
      assert.match(r.text, /^HTTP\/1\.1 502/, `after ${r.ms} ms: ${r.text}`);
    });

    it("answers 502 for an unsolicited 101, and forwards nothing that followed it", async () => {
      for (const [port, host] of [
        [open.ports.outbound!, appHost],
        [client.ports.outbound!, web],
      ] as const) {
        const r = await exchange(port, get("/unsolicited-101", host), (t) => t.includes("\r\n\r\n"));
        assert.match(r.text, /^HTTP\/1\.1 502/, r.text);
        assert.ok(!r.text.includes("forged"), r.text);
      }
    });

    it("answers a malformed chunked request body with 400, then closes", async () => {
      for (const port of [open.ports.outbound!, open.ports.inbound!]) {
        const r = await exchange(
          port,
          `POST /bad HTTP/1.1\r\nhost: ${appHost}\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n`,
        );
        assert.match(r.text, /^HTTP\/1\.1 400/, r.text);
        assert.ok(r.closed);
      }
    });
  });
});
