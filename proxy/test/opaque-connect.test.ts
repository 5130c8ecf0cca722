// The outbound opaque relay when an endpoint cannot be reached (a pod going away, a handshake
// past its deadline on a busy node): before any byte is relayed it tries another endpoint, and
// when none answers it closes the application's connection instead of leaving it waiting. Real
// sockets on loopback; discovery and TLS are stand-ins (the relay only asks them for endpoints,
// a context and a verifier).
import assert from "node:assert/strict";
import net, { type AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import tls from "node:tls";
import { Balancer } from "../balancer.ts";
import type { Discovery } from "../discovery-client.ts";
import { OPAQUE_CONNECT_ATTEMPTS, relayOutbound } from "../opaque.ts";
import type { Service } from "../service.ts";

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

async function listen(onConnection: (s: net.Socket) => void): Promise<number> {
  const server = net.createServer(onConnection);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as AddressInfo).port;
}

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** A discovery that resolves every authority to these endpoints. */
function discoveryOf(endpoints: Array<{ port: number; identity?: string }>): Discovery {
  const balancer = new Balancer({ defaultRttMs: 1, decayMs: 1000 });
  balancer.update(endpoints.map((e) => ({ address: "127.0.0.1", port: e.port, identity: e.identity })));
  return { resolve: async () => ({ balancer }) as unknown as Service } as unknown as Discovery;
}

/** Runs relayOutbound for one application connection; resolves with what the application read. */
async function relayOnce(discovery: Discovery, timeoutMs: number) {
  const front = await listen((client) => {
    void relayOutbound(
      client,
      Buffer.alloc(0),
      "server.shop.svc.cluster.local:3306",
      { host: "127.0.0.1", port: 1 },
      {
        discovery,
        clientTls: {
          generation: 1,
          clientContext: () => tls.createSecureContext({}),
          verifierFor: () => () => undefined,
        },
        timeoutMs,
        forwarded: () => {},
      },
    );
  });
  const started = Date.now();
  return new Promise<{ data: string; ms: number }>((resolve) => {
    const app = net.connect(front, "127.0.0.1");
    let data = "";
    app.on("data", (d) => {
      data += d;
      app.end();
    });
    app.on("error", () => {});
    app.on("close", () => resolve({ data, ms: Date.now() - started }));
    app.setTimeout(10_000, () => app.destroy());
  });
}

describe("opaque relay connects", () => {
  it("tries another endpoint when one refuses, before any byte is relayed", async () => {
    const banner = await listen((s) => s.end("220 ready\r\n"));
    const refused = await closedPort();
    for (let i = 0; i < 5; i++) {
      const r = await relayOnce(discoveryOf([{ port: refused }, { port: banner }]), 1000);
      assert.equal(r.data, "220 ready\r\n", `attempt ${i}`);
    }
  });

  it("closes the application's connection when no meshed endpoint completes its handshake in time", async () => {
    // Accepts TCP and never answers the TLS ClientHello: each handshake passes its deadline.
    let accepted = 0;
    const silent = await listen(() => {
      accepted++;
    });
    const r = await relayOnce(
      discoveryOf([{ port: silent, identity: "spiffe://cluster.local/ns/shop/sa/db" }]),
      200,
    );
    assert.equal(r.data, "");
    assert.ok(r.ms < 5_000, `closed after ${r.ms} ms, not left waiting`);
    assert.equal(accepted, OPAQUE_CONNECT_ATTEMPTS, "one endpoint, tried once per attempt");
  });
});
