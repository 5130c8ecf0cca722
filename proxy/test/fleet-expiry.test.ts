/**
 * Every leaf of the mesh expired at once (identity down longer than a leaf lifetime), then
 * identity back — the client's proxy renewing seconds before the server's — under steady
 * HTTP/1.1 and HTTP/2 traffic through a real mTLS pair (issue 23, the real-node outage's hard
 * part, reproduced on loopback):
 *
 * - while every leaf is expired, no new mTLS connection can be made; requests beyond the open
 *   connections wait for one to be released instead of failing (a burst of concurrent requests);
 * - when the client renews first, its new connections are refused by the server (whose leaf is
 *   still expired), and its older connections keep carrying the traffic until the server renews
 *   (make before break).
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, it } from "node:test";
import { type ProcessMeshFixture, startProcessMeshFixture } from "./mesh-fixture.ts";
import { type ProxyProcess, spawnProxy, waitFor } from "./proxy-process.ts";
import { type App, h1Request, startOkApp } from "./test-apps.ts";
import { TrafficLoop } from "./traffic-loop.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const web = "web.svc:80";

interface IdentityView {
  renewals: number;
  leafNotAfter: string;
}

/** Waits until the leaves the proxies hold now have expired. */
async function untilExpired(...views: IdentityView[]): Promise<void> {
  const last = Math.max(...views.map((v) => Date.parse(v.leafNotAfter)));
  await new Promise((r) => setTimeout(r, Math.max(0, last + 300 - Date.now())));
}

describe("after every leaf expired at once", () => {
  let mesh: ProcessMeshFixture;
  let app: App;
  let server: ProxyProcess;
  let client: ProxyProcess;

  const view = async (p: ProxyProcess) => JSON.parse((await p.admin("/identity")).body) as IdentityView;

  before(async () => {
    mesh = await startProcessMeshFixture("fleet-expiry", td, ["server", "client"], 8_000);
    app = await startOkApp();
    server = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${app.port}` },
      identity: mesh.identityConfig("server", 0.5),
      admin: { listen: "127.0.0.1:0" },
    });
    mesh.destination.set(web, {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
    });
    client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      identity: mesh.identityConfig("client", 0.5),
      destination: { url: mesh.destination.url },
      admin: { listen: "127.0.0.1:0" },
    });
  });

  after(async () => {
    await Promise.all([client?.stop("SIGKILL"), server?.stop("SIGKILL")]);
    await Promise.all([app?.close(), mesh?.close()]);
  });

  it("carries the traffic on the open connections through the expiry and a staggered renewal", async () => {
    const traffic = new TrafficLoop(client.ports.outbound!, web);
    const burstFailures: string[] = [];
    try {
      await waitFor(() => traffic.ok > 20, 10_000);
      await mesh.identity.mode("fail");
      await untilExpired(await view(client), await view(server));

      // More concurrent requests than open connections: they queue for the open ones.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
      const burst = await Promise.all(
        Array.from({ length: 6 }, () =>
          h1Request(client.ports.outbound!, { host: web, agent }).catch((e: Error) => ({
            status: 0,
            body: e.message,
          })),
        ),
      );
      agent.destroy();
      for (const r of burst) if (r.status !== 200) burstFailures.push(`${r.status} ${r.body.trim()}`);

      // The client renews; the server's leaf stays expired for 3 s more.
      await mesh.identity.mode("fail", `${td}/server`);
      const renewals = [(await view(client)).renewals, (await view(server)).renewals];
      await mesh.identity.mode("issue");
      await waitFor(async () => (await view(client)).renewals > renewals[0]!, 10_000);
      await new Promise((r) => setTimeout(r, 3_000));
      assert.equal((await view(server)).renewals, renewals[1], "the server was still expired meanwhile");

      await mesh.identity.mode("issue", `${td}/server`);
      await waitFor(async () => (await view(server)).renewals > renewals[1]!, 10_000);
      const ok = traffic.ok;
      await waitFor(() => traffic.ok > ok + 50, 10_000);
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(
      { burst: burstFailures, steady: traffic.failures.slice(0, 5).map((f) => f.what) },
      { burst: [], steady: [] },
      `steady traffic: ${traffic.failures.length} failed, ${traffic.ok} ok`,
    );
  });
});
