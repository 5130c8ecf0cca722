/**
 * Identity lifecycle under traffic: short-lived leaves are renewed at ~70% of their lifetime
 * and a trust-anchor rotation (bundle += new anchor, issue from it, bundle -= old anchor) is
 * picked up from the bundle file — with requests flowing through mTLS the whole time and
 * not one failing.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fingerprint } from "../../pki/index.ts";
import { FakeDestination, FakeIdentity } from "./control-plane-fakes.ts";
import { createMeshCa } from "./mesh-pki.ts";
import { type ProxyProcess, spawnProxy, tempDir, waitFor } from "./proxy-process.ts";
import { type App, h1Request, h2Request, startDualApp } from "./test-apps.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const web = "web.svc:80";

interface IdentityView {
  spiffeId: string;
  leafFingerprint: string;
  trustBundleFingerprints: string[];
  renewals: number;
}

describe("certificate renewal and trust bundle rotation under traffic", () => {
  const ca1 = createMeshCa("old");
  const ca2 = createMeshCa("new");
  const dir = tempDir("rotation");
  const bundlePath = join(dir, "bundle.pem");
  let identity: FakeIdentity;
  let destination: FakeDestination;
  let app: App;
  let server: ProxyProcess;
  let client: ProxyProcess;

  const status = async (p: ProxyProcess) => JSON.parse((await p.admin("/identity")).body) as IdentityView;

  before(async () => {
    writeFileSync(bundlePath, ca1.anchor.pem);
    writeFileSync(join(dir, "client.token"), "tok-client");
    writeFileSync(join(dir, "server.token"), "tok-server");
    const tokens = new Map([
      ["tok-client", `${td}/client`],
      ["tok-server", `${td}/server`],
    ]);
    identity = await new FakeIdentity(ca1, tokens, 3_000).start();
    destination = await new FakeDestination().start();
    app = await startDualApp(
      (_req, res) => res.end("ok"),
      (stream) => {
        stream.respond({ ":status": 200 });
        stream.end("ok");
      },
    );
    const identityConfig = (who: string) => ({
      url: identity.url,
      tokenPath: join(dir, `${who}.token`),
      trustBundlePath: bundlePath,
      spiffeId: `${td}/${who}`,
      trustBundlePollMs: 100,
    });
    server = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${app.port}` },
      identity: identityConfig("server"),
      admin: { listen: "127.0.0.1:0" },
    });
    destination.set(web, {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
    });
    client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      identity: identityConfig("client"),
      destination: { url: destination.url },
      admin: { listen: "127.0.0.1:0" },
    });
  });

  after(async () => {
    await Promise.all([client?.stop("SIGKILL"), server?.stop("SIGKILL")]);
    await Promise.all([app?.close(), identity?.close(), destination?.close()]);
  });

  it("renews leaves and rotates anchors without a failed request", async () => {
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    const session = http2.connect(`http://127.0.0.1:${client.ports.outbound}`);
    const h1Loop = async () => {
      while (!stop) {
        const res = await h1Request(client.ports.outbound!, { host: web, path: "/", agent }).catch(
          (e: Error) => ({
            status: 0,
            body: e.message,
          }),
        );
        if (res.status === 200) ok++;
        else failures.push(`h1 ${res.status} ${res.body}`);
      }
    };
    const h2Loop = async () => {
      while (!stop) {
        const res = await h2Request(session, { authority: web, path: "/", method: "GET" }).catch(
          (e: Error) => ({
            status: 0,
            body: e.message,
          }),
        );
        if (res.status === 200) ok++;
        else failures.push(`h2 ${res.status} ${res.body}`);
      }
    };
    const loops = Promise.all([h1Loop(), h1Loop(), h2Loop()]);
    try {
      const first = await status(client);
      // 3 s leaves renew at ~2.1 s: wait for two renewals on both sides.
      await waitFor(
        async () => (await status(client)).renewals >= 3 && (await status(server)).renewals >= 3,
        15_000,
      );
      assert.notEqual((await status(client)).leafFingerprint, first.leafFingerprint);

      const fp1 = fingerprint(ca1.anchor.der);
      const fp2 = fingerprint(ca2.anchor.der);
      writeFileSync(bundlePath, ca1.anchor.pem + ca2.anchor.pem);
      const trusts = async (p: ProxyProcess, fps: string[]) =>
        JSON.stringify((await status(p)).trustBundleFingerprints) === JSON.stringify(fps);
      await waitFor(
        async () => (await trusts(client, [fp1, fp2])) && (await trusts(server, [fp1, fp2])),
        5_000,
      );

      identity.useCa(ca2);
      const before = [(await status(client)).renewals, (await status(server)).renewals];
      await waitFor(
        async () =>
          (await status(client)).renewals > before[0]! && (await status(server)).renewals > before[1]!,
        10_000,
      );
      writeFileSync(bundlePath, ca2.anchor.pem);
      await waitFor(async () => (await trusts(client, [fp2])) && (await trusts(server, [fp2])), 5_000);
      await new Promise((r) => setTimeout(r, 2_500));
    } finally {
      stop = true;
      await loops;
      session.close();
      agent.destroy();
    }
    assert.deepEqual(failures.slice(0, 5), []);
    assert.ok(ok > 100, `only ${ok} requests completed`);
  });
});
