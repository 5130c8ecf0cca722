// The application's probes, run by the proxy's admin server for the kubelet (capture rewrites
// them to /app-probe/...): real HTTP, TCP and gRPC-health servers on loopback, the admin server
// the kubelet asks, and what it concludes for each outcome the kubelet distinguishes.
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import type { AppProbe } from "../../capture/app-probes.ts";
import { createAdminServer, listenAdmin } from "../admin.ts";
import { parseConfig } from "../config.ts";
import { loadRawConfig } from "../config-source.ts";
import { Registry } from "../metrics.ts";

const listen = (server: net.Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );

/** A grpc.health.v1 server answering `status` (1 SERVING, 2 NOT_SERVING) for every service. */
function healthServer(status: number, seen: string[]): http2.Http2Server {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push(`${headers[":path"]} ${body.subarray(7).toString()}`);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]));
    });
  });
  return server;
}

describe("application probes on the admin port", () => {
  const servers: net.Server[] = [];
  const seen: string[] = [];
  const ports: Record<string, number> = {};
  let admin: http.Server;
  let adminPort = 0;

  before(async () => {
    const app = http.createServer((req, res) => {
      seen.push(`${req.url} ${req.headers["x-probe"] ?? ""} ${req.headers["user-agent"]}`);
      const status = { "/ok": 200, "/moved": 302, "/broken": 500 }[req.url ?? ""] ?? 404;
      if (req.url === "/slow") return;
      res.writeHead(status, status === 302 ? { location: "/elsewhere" } : {}).end("body");
    });
    const tcp = net.createServer((s) => s.end());
    const serving = healthServer(1, seen);
    const notServing = healthServer(2, seen);
    servers.push(app, tcp, serving, notServing);
    ports.http = await listen(app);
    ports.tcp = await listen(tcp);
    ports.serving = await listen(serving);
    ports.notServing = await listen(notServing);
    const closed = net.createServer();
    ports.closed = await listen(closed);
    await new Promise((r) => closed.close(r));
    const probe = (p: Omit<AppProbe, "timeoutSeconds">): AppProbe =>
      ({ ...p, timeoutSeconds: 1 }) as AppProbe;
    const httpGet = (path: string, port = ports.http as number) =>
      probe({ httpGet: { port, path, scheme: "HTTP", httpHeaders: [{ name: "X-Probe", value: "yes" }] } });
    // Through the real configuration path, as the injector renders it.
    const raw = loadRawConfig({
      TRELLIS_PROXY_OUTBOUND_LISTEN: "127.0.0.1:0",
      TRELLIS_PROXY_APP_PROBES: JSON.stringify({
        "/app-probe/web/readiness": httpGet("/ok"),
        "/app-probe/web/moved": httpGet("/moved"),
        "/app-probe/web/broken": httpGet("/broken"),
        "/app-probe/web/slow": httpGet("/slow"),
        "/app-probe/web/refused": httpGet("/ok", ports.closed),
        "/app-probe/web/tcp": probe({ tcpSocket: { port: ports.tcp as number } }),
        "/app-probe/web/tcp-closed": probe({ tcpSocket: { port: ports.closed as number } }),
        "/app-probe/web/grpc": probe({ grpc: { port: ports.serving as number, service: "shop.v1" } }),
        "/app-probe/web/grpc-down": probe({ grpc: { port: ports.notServing as number } }),
        "/app-probe/web/grpc-closed": probe({ grpc: { port: ports.closed as number } }),
      }),
    });
    const parsed = parseConfig(raw);
    assert.ok(parsed.ok, JSON.stringify(parsed));
    admin = createAdminServer({
      registry: new Registry(),
      ready: () => true,
      degradations: () => [],
      identity: undefined,
      appProbes: parsed.config.admin.appProbes,
    });
    adminPort = await listenAdmin(admin, { host: "127.0.0.1", port: 0 });
  });
  after(() => {
    admin?.close();
    for (const s of servers) s.close();
  });

  const ask = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
      headers: { "user-agent": "kube-probe/1.36" },
    });
    return { status: res.status, body: await res.text() };
  };

  it("httpGet: the application's answer, 200 for a redirect, 503 when it cannot be reached in time", async () => {
    assert.equal((await ask("/app-probe/web/readiness")).status, 200);
    assert.ok(seen.includes("/ok yes kube-probe/1.36"), "the probe's headers and the kubelet's user agent");
    assert.equal((await ask("/app-probe/web/moved")).status, 200);
    assert.equal((await ask("/app-probe/web/broken")).status, 500);
    const slow = await ask("/app-probe/web/slow");
    assert.equal(slow.status, 503);
    assert.match(slow.body, /timed out after 1 s/);
    assert.match((await ask("/app-probe/web/refused")).body, /ECONNREFUSED/);
  });

  it("tcpSocket: open or not — the application's port, not the proxy's", async () => {
    assert.equal((await ask("/app-probe/web/tcp")).status, 200);
    assert.equal((await ask("/app-probe/web/tcp-closed")).status, 503);
  });

  it("grpc: SERVING from grpc.health.v1.Health/Check, anything else fails", async () => {
    assert.equal((await ask("/app-probe/web/grpc")).status, 200);
    assert.ok(seen.includes("/grpc.health.v1.Health/Check shop.v1"), seen.join("\n"));
    assert.match((await ask("/app-probe/web/grpc-down")).body, /status 2, not SERVING/);
    assert.equal((await ask("/app-probe/web/grpc-closed")).status, 503);
  });

  it("answers 404 for a probe it was not given, and refuses a malformed probe list", async () => {
    assert.equal((await ask("/app-probe/web/nope")).status, 404);
    const bad = parseConfig(
      loadRawConfig({
        TRELLIS_PROXY_OUTBOUND_LISTEN: "127.0.0.1:0",
        TRELLIS_PROXY_APP_PROBES:
          '{"/app-probe/x/readiness":{"httpGet":{"port":0,"path":"/"},"timeoutSeconds":1}}',
      }),
    );
    assert.equal(bad.ok, false);
    assert.match(
      bad.ok ? "" : bad.errors.join(),
      /admin.appProbes: \/app-probe\/x\/readiness: not one httpGet/,
    );
  });
});
