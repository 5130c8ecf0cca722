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

/** Waits 15 polls of the bundle file (100 ms each) with traffic flowing. */
const fifteenPolls = () => new Promise((r) => setTimeout(r, 1_500));

/**
 * Expectations checked and the unmet ones listed together, so that a run against code without
 * these fixes shows each finding that fails, not only the first.
 */
function expectations() {
  const unmet: string[] = [];
  return {
    unmet,
    expect: (ok: boolean, what: string) => {
      if (!ok) unmet.push(what);
    },
  };
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

  it("finding 3: a CERTIFICATE block that is not a certificate is dropped, a bundle of nothing else refused", async () => {
    const { unmet, expect } = expectations();
    const traffic = new TrafficLoop(client.ports.outbound!, web);
    try {
      await waitFor(() => traffic.ok > 20, 10_000);
      // The junk block first: OpenSSL stops reading a bundle at its first bad block.
      replaceFile(bundlePath, junkBlock + mesh.ca.anchor.pem);
      await fifteenPolls();
      expect(
        traffic.failures.length === 0,
        `3: junk + anchor: ${traffic.failures.length} failed, ${traffic.ok} ok`,
      );
      for (const p of [client, server]) {
        const dropped = lines(p, "trust bundle block dropped");
        expect(
          dropped.length === 1 && /block 1: not an X\.509 certificate/.test(dropped[0] ?? ""),
          "3: one warning naming the dropped block",
        );
        expect(
          JSON.stringify(await anchors(p)) === JSON.stringify([mesh.ca.anchor.fingerprint]),
          "3: the good anchor alone in use",
        );
      }
      const failedBefore = traffic.failures.length;
      replaceFile(bundlePath, junkBlock);
      await fifteenPolls();
      expect(
        traffic.failures.length === failedBefore,
        `3: junk only: ${traffic.failures.length - failedBefore} failed`,
      );
      for (const p of [client, server]) {
        expect(
          lines(p, "trust bundle has no usable anchor").length === 1,
          "3: one warning for the refused bundle",
        );
        const ready = await p.admin("/ready");
        expect(
          ready.status === 200 &&
            /degraded: trust bundle has no usable anchor since .*using the last good one/.test(ready.body),
          "3: /ready 200 and degraded",
        );
      }
    } finally {
      replaceFile(bundlePath, mesh.ca.anchor.pem);
      await fifteenPolls();
      await traffic.stop();
    }
    assert.deepEqual(unmet, []);
  });

  it("finding 10: anchors counted as what they are; a damaged file warned about once, not every poll", async () => {
    const { unmet, expect } = expectations();
    const traffic = new TrafficLoop(client.ports.outbound!, web);
    // Log lines of this test only (the one before left its own).
    const offset = new Map([client, server].map((p) => [p, p.output().length]));
    const newLines = (p: ProxyProcess, msg: string) =>
      p
        .output()
        .slice(offset.get(p))
        .split("\n")
        .filter((l) => l.includes(`"msg":"${msg}`));
    try {
      await waitFor(() => traffic.ok > 20, 10_000);
      replaceFile(bundlePath, mesh.ca.anchor.pem + junkBlock);
      await fifteenPolls();
      for (const p of [client, server]) {
        const metrics = (await p.admin("/metrics")).body;
        expect(metricValue(metrics, "trust_bundle_anchors", {}) === 1, "10: trust_bundle_anchors is 1");
        expect((await anchors(p)).length === 1, "10: /identity lists one anchor");
        expect(metricValue(metrics, "trust_bundle_rejected_blocks", {}) === 1, "10: one block rejected");
      }
      // Removed: 15 polls of a file that is not there, one warning.
      rmSync(bundlePath);
      await fifteenPolls();
      for (const p of [client, server]) {
        const unreadable = newLines(p, "trust bundle unreadable").length;
        expect(unreadable === 1, `10: ${unreadable} warnings over 15 polls of a removed file`);
      }
      replaceFile(bundlePath, mesh.ca.anchor.pem);
      await fifteenPolls();
      for (const p of [client, server]) {
        expect(newLines(p, "trust bundle problem ended").length === 1, "10: one line when the problem ends");
        expect(!(await p.admin("/ready")).body.includes("degraded"), "10: /ready no longer degraded");
        // Every line about the bundle in this test: loaded (anchor + junk), the dropped block,
        // unreadable, the problem ended — not one per poll.
        const said = newLines(p, "trust bundle").length;
        expect(said <= 5, `10: ${said} log lines about the bundle in 45 polls`);
      }
      expect(traffic.failures.length === 0, `${traffic.failures.length} failed, ${traffic.ok} ok`);
    } finally {
      await traffic.stop();
    }
    assert.deepEqual(unmet, []);
  });
});
