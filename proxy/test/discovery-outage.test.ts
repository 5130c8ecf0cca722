/**
 * Discovery when the destination service fails (issue 23, findings 1, 2, 6, 7 and 8), through
 * real proxy processes: a destination connection gone silent behind a relay while the service
 * itself is healthy on new connections; a watch the service never answers; the service killed,
 * restarted and frozen with SIGSTOP (a child process); and the instants of reconnection.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { FakeDestination, FakeIdentity } from "./control-plane-fakes.ts";
import { ControlPlaneProcess } from "./control-plane-process.ts";
import { createMeshCa } from "./mesh-pki.ts";
import { metricValue, type ProxyProcess, spawnProxy, tempDir, waitFor } from "./proxy-process.ts";
import { TcpRelay } from "./tcp-relay.ts";
import { type App, h1Request, type Reply, startReplyingApp } from "./test-apps.ts";

const td = "spiffe://cluster.local/ns/default/sa";

/** Fast liveness for tests: a silent connection is given up within ~0.6 s. */
const fastDiscovery = { discoveryPingIntervalMs: 300, discoveryPingTimeoutMs: 300, discoveryTimeoutMs: 1500 };

async function get(
  proxy: ProxyProcess,
  host: string,
): Promise<{ status: number; body: string; ms: number; error: string }> {
  const started = Date.now();
  const res = await h1Request(proxy.ports.outbound!, { host }).catch(
    (e: Error): Reply => ({ status: 0, body: e.message, headers: {} }),
  );
  return {
    status: res.status,
    body: res.body,
    ms: Date.now() - started,
    error: String(res.headers["trellis-proxy-error"] ?? ""),
  };
}

const metric = async (p: ProxyProcess, name: string, labels: Record<string, string> = {}) =>
  metricValue((await p.admin("/metrics")).body, name, labels);

/** Log lines (pino JSON) of a proxy whose message is `msg`. */
const logLines = (p: ProxyProcess, msg: string) =>
  p
    .output()
    .split("\n")
    .filter((l) => l.includes(`"msg":"${msg}`));

describe("discovery when the destination service fails", () => {
  let a: App;
  let b: App;
  const procs: ProxyProcess[] = [];
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    a = await startReplyingApp({ text: "A" });
    b = await startReplyingApp({ text: "B" });
  });

  after(async () => {
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    for (const c of closers.reverse()) await c();
    await Promise.all([a?.close(), b?.close()]);
  });

  const plaintextDestination = async () => {
    const destination = await new FakeDestination().start();
    closers.push(() => destination.close());
    return destination;
  };
  const proxyTo = async (url: string, extra: object = {}) => {
    const p = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      destination: { url },
      admin: { listen: "127.0.0.1:0" },
      limits: fastDiscovery,
      ...extra,
    });
    procs.push(p);
    return p;
  };
  const at = (app: App) => [{ address: "127.0.0.1", port: app.port }];

  it("finding 1: gives up a silent destination connection (HTTP/2 PING) and picks up what changed meanwhile", async () => {
    const destination = await plaintextDestination();
    const relay = await new TcpRelay(destination.port).start();
    closers.push(() => relay.close());
    destination.set("web.svc:80", { endpoints: at(a) });
    const proxy = await proxyTo(`http://127.0.0.1:${relay.port}`);
    assert.match((await get(proxy, "web.svc:80")).body, /^A /);

    // The proxy's connection goes silent; the service itself is healthy on new connections.
    relay.silenceOpenConnections();
    destination.set("web.svc:80", { endpoints: at(b) });
    destination.set("new.svc:80", { endpoints: at(b) });
    await waitFor(async () => (await get(proxy, "web.svc:80")).body.startsWith("B "), 10_000);
    const fresh = await get(proxy, "new.svc:80");
    assert.equal(fresh.status, 200, fresh.body);
    assert.ok((await metric(proxy, "discovery_reconnects_total", { reason: "ping_timeout" })) >= 1);
    assert.equal(await metric(proxy, "discovery_connected"), 1);
  });

  it("finding 2: cancels and retries a watch the destination never answers", async () => {
    const destination = await plaintextDestination();
    destination.hold("slow.svc:80");
    const proxy = await proxyTo(destination.url);
    const first = await get(proxy, "slow.svc:80");
    assert.equal(first.status, 503, first.body);

    destination.release("slow.svc:80");
    destination.set("slow.svc:80", { endpoints: at(a) });
    await waitFor(async () => (await get(proxy, "slow.svc:80")).status === 200, 10_000);
    assert.ok(destination.heldStreamsClosed >= 1, "the unanswered stream was cancelled");
    assert.ok((destination.watchRequests.get("slow.svc:80") ?? 0) >= 2);
    assert.ok((await metric(proxy, "discovery_reconnects_total", { reason: "no_first_answer" })) >= 1);
  });

  it("finding 8: reconnects with jittered back-off, not at fixed instants", async () => {
    const destination = await plaintextDestination();
    const relay = await new TcpRelay(destination.port).start();
    closers.push(() => relay.close());
    relay.mode = "refuse";
    const proxy = await proxyTo(`http://127.0.0.1:${relay.port}`);
    void get(proxy, "web.svc:80");
    // Back-off steps of 0.2, 0.4, 0.8, 1.6, 3.2, 6.4 s between connection attempts.
    await waitFor(() => relay.accepted.length >= 7, 30_000);
    const gaps = relay.accepted.slice(1).map((t, i) => t - relay.accepted[i]!);
    const steps = [200, 400, 800, 1600, 3200, 6400];
    for (const [i, gap] of gaps.slice(0, 6).entries()) {
      assert.ok(
        gap <= steps[i]! * 1.25 + 100,
        `attempt ${i + 2} came ${gap} ms after the last (step ${steps[i]})`,
      );
    }
    // Without jitter every gap is its step (plus a few ms); with it, each is drawn from the upper
    // half of its step. Five gaps all within 10% of their steps: p = 0.2^5.
    const early = gaps.slice(1, 6).filter((gap, i) => gap < steps[i + 1]! * 0.9);
    assert.ok(early.length >= 1, `gaps ${gaps.join(", ")} ms follow the steps exactly: no jitter`);
  });

  describe("the destination service killed, restarted and frozen", () => {
    const ca = createMeshCa("discovery-outage");
    let identity: FakeIdentity;
    let destination: ControlPlaneProcess;
    let proxy: ProxyProcess;

    before(async () => {
      const dir = tempDir("discovery-outage");
      const bundle = join(dir, "bundle.pem");
      writeFileSync(bundle, ca.anchor.pem);
      writeFileSync(join(dir, "token"), "tok-client");
      identity = await new FakeIdentity(ca, new Map([["tok-client", `${td}/client`]]), 3_600_000).start();
      closers.push(() => identity.close());
      destination = await ControlPlaneProcess.start("destination", ca);
      closers.push(() => destination.kill());
      await destination.set("web.svc:80", { endpoints: at(a) });
      proxy = await proxyTo(destination.url, {
        identity: { url: identity.url, tokenPath: join(dir, "token"), trustBundlePath: bundle },
      });
      assert.equal((await get(proxy, "web.svc:80")).status, 200);
    });

    it("findings 6 and 7: an outage is logged once, measured and shown; known routes keep working; unknown ones fail fast", async () => {
      await destination.kill();
      await waitFor(async () => (await metric(proxy, "discovery_connected")) === 0, 5_000);
      const ready = await proxy.admin("/ready");
      assert.equal(ready.status, 200, "an unreachable destination does not make the proxy unready");
      assert.match(ready.body, /degraded: discovery: destination service unreachable/);

      for (let i = 0; i < 20; i++) {
        const r = await get(proxy, "web.svc:80");
        assert.equal(r.status, 200, `known route during the outage: ${r.body}`);
      }
      // An authority nobody asked for before: the first request waits the discovery timeout,
      // the ones after it are answered at once.
      const first = await get(proxy, "new.svc:80");
      assert.equal(first.status, 503);
      for (let i = 0; i < 10; i++) {
        const r = await get(proxy, "new.svc:80");
        assert.equal(r.status, 503);
        assert.equal(r.error, "DiscoveryUnavailable");
        assert.ok(r.ms < 500, `request ${i} waited ${r.ms} ms in the fail-fast state`);
      }
      assert.ok((await metric(proxy, "discovery_fail_fast_total")) >= 10);
      assert.equal(await metric(proxy, "discovery_unresolved_services"), 1);
      // Retries went on for seconds: still one warning for the outage, one for the authority.
      assert.equal(logLines(proxy, "destination service unreachable").length, 1, proxy.output().slice(-3000));
      assert.equal(logLines(proxy, "authority unresolved").length, 1);

      await destination.set("new.svc:80", { endpoints: at(b) });
      await destination.restart();
      await waitFor(async () => (await get(proxy, "new.svc:80")).status === 200, 15_000);
      await waitFor(async () => (await metric(proxy, "discovery_connected")) === 1, 5_000);
      assert.equal(await metric(proxy, "discovery_unresolved_services"), 0);
      assert.equal(logLines(proxy, "destination service reachable again").length, 1);
      assert.equal(logLines(proxy, "authority resolved again").length, 1);
      assert.doesNotMatch((await proxy.admin("/ready")).body, /degraded/);
      assert.ok((await metric(proxy, "discovery_update_age_seconds")) < 5);
    });

    it("finding 6: a frozen (SIGSTOP) destination is detected by PING, and its return too", async () => {
      const before = logLines(proxy, "destination service unreachable").length;
      destination.freeze();
      try {
        await waitFor(async () => (await metric(proxy, "discovery_connected")) === 0, 5_000);
        for (let i = 0; i < 10; i++) assert.equal((await get(proxy, "web.svc:80")).status, 200);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(logLines(proxy, "destination service unreachable").length, before + 1);
      } finally {
        destination.thaw();
      }
      await waitFor(async () => (await metric(proxy, "discovery_connected")) === 1, 15_000);
      assert.equal(logLines(proxy, "destination service reachable again").length, 2);
      assert.ok((await metric(proxy, "discovery_reconnects_total", { reason: "ping_timeout" })) >= 1);
    });
  });
});
