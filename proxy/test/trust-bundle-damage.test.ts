/**
 * A damaged trust bundle file under traffic (issue 23, findings 3 and 10), through a real mTLS
 * pair of proxy processes: a CERTIFICATE block whose body is not a certificate beside the good
 * anchor, then alone, then the file removed — no failed request, one warning per state (not one
 * per poll), anchors counted as what they are, and the state shown on `/ready`.
 */
import assert from "node:assert/strict";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { toPem } from "../../pki/index.ts";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { metricValue, type ProxyProcess, spawnProxy, waitFor } from "./proxy-process.ts";
import { type App, startOkApp } from "./test-apps.ts";
import { TrafficLoop } from "./traffic-loop.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const web = "web.svc:80";
/** Labelled CERTIFICATE, base64 body, not a certificate: what finding 3 put in the bundle. */
const junkBlock = toPem("CERTIFICATE", Buffer.from("definitely not a DER certificate, just some bytes"));

/** Replaces the file at once, as the kubelet does (a poll never reads it half-written). */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** 15 polls of the bundle file with traffic flowing, and not one request failed so far. */
async function flowsWithoutFailure(traffic: TrafficLoop): Promise<void> {
  const ok = traffic.ok;
  await new Promise((r) => setTimeout(r, 1_500));
  assert.ok(traffic.ok > ok, "traffic flows");
  assert.deepEqual(traffic.failures.slice(0, 3), [], `${traffic.failures.length} failed, ${traffic.ok} ok`);
}

describe("a damaged trust bundle under traffic", () => {
  let mesh: MeshFixture;
  let app: App;
  let server: ProxyProcess;
  let client: ProxyProcess;
  let bundlePath: string;

  const lines = (p: ProxyProcess, msg: string) =>
    p
      .output()
      .split("\n")
      .filter((l) => l.includes(`"msg":"${msg}`));
  const both = async (check: (p: ProxyProcess) => Promise<boolean> | boolean) =>
    (await check(client)) && (await check(server));
  const anchors = async (p: ProxyProcess) =>
    (JSON.parse((await p.admin("/identity")).body) as { trustBundleFingerprints: string[] })
      .trustBundleFingerprints;

  before(async () => {
    mesh = await startMeshFixture("bundle-damage", { client: `${td}/client`, server: `${td}/server` });
    app = await startOkApp();
    const identity = (who: string) => ({ ...mesh.identityConfig(who), trustBundlePollMs: 100 });
    bundlePath = mesh.identityConfig("client").trustBundlePath;
    server = await spawnProxy({
      inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${app.port}` },
      identity: identity("server"),
      admin: { listen: "127.0.0.1:0" },
    });
    mesh.destination.set(web, {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
    });
    client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      identity: identity("client"),
      destination: { url: mesh.destination.url },
      admin: { listen: "127.0.0.1:0" },
    });
  });

  after(async () => {
    await Promise.all([client?.stop("SIGKILL"), server?.stop("SIGKILL")]);
    await Promise.all([app?.close(), mesh?.close()]);
  });

  it("keeps serving with the good anchors and says so once per state", async () => {
    const good = mesh.ca.anchor.pem;
    const traffic = new TrafficLoop(client.ports.outbound!, web);
    try {
      await waitFor(() => traffic.ok > 20, 10_000);

      // Findings 3 and 10: a junk block before the good anchor (OpenSSL stops reading a bundle at
      // its first bad block) — the block is dropped, one anchor counted.
      replaceFile(bundlePath, junkBlock + good);
      await flowsWithoutFailure(traffic);
      await waitFor(() => both((p) => lines(p, "trust bundle block dropped").length === 1), 5_000);
      for (const p of [client, server]) {
        assert.match(lines(p, "trust bundle block dropped")[0]!, /block 1: not an X\.509 certificate/);
        assert.deepEqual(await anchors(p), [mesh.ca.anchor.fingerprint]);
        const metrics = (await p.admin("/metrics")).body;
        assert.equal(metricValue(metrics, "trust_bundle_anchors", {}), 1);
        assert.equal(metricValue(metrics, "trust_bundle_rejected_blocks", {}), 1);
      }

      // Finding 3: only the junk block — refused, the last good bundle kept, /ready says so.
      replaceFile(bundlePath, junkBlock);
      await flowsWithoutFailure(traffic);
      await waitFor(() => both((p) => lines(p, "trust bundle has no usable anchor").length === 1), 5_000);
      for (const p of [client, server]) {
        const ready = await p.admin("/ready");
        assert.equal(ready.status, 200);
        assert.match(
          ready.body,
          /degraded: trust bundle has no usable anchor since .*using the last good one/,
        );
        assert.deepEqual(await anchors(p), [mesh.ca.anchor.fingerprint]);
      }

      // Finding 10: the file removed — one warning over many polls, not one per poll.
      rmSync(bundlePath);
      await flowsWithoutFailure(traffic);
      await waitFor(() => both((p) => lines(p, "trust bundle unreadable").length === 1), 5_000);
      await new Promise((r) => setTimeout(r, 1_500));
      for (const p of [client, server]) {
        assert.equal(lines(p, "trust bundle unreadable").length, 1, "15 polls, one warning");
        assert.equal(lines(p, "trust bundle has no usable anchor").length, 1);
      }
      replaceFile(bundlePath, good);
      await waitFor(() => both(async (p) => !(await p.admin("/ready")).body.includes("degraded")), 5_000);
      for (const p of [client, server]) assert.equal(lines(p, "trust bundle problem ended").length, 1);
      await flowsWithoutFailure(traffic);
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(traffic.failures.slice(0, 5), [], `${traffic.failures.length} failed of ${traffic.ok}`);
  });
});
