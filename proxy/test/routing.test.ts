/**
 * Routing policy through a real outbound proxy process: ServiceProfile routes from the
 * discovery service decide retries (bounded by the budget) and timeouts, and peak-EWMA
 * balancing steers traffic away from a slow endpoint. Endpoints here are plaintext apps.
 */
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { FakeDestination } from "./control-plane-fakes.ts";
import { metricValue, type ProxyProcess, spawnProxy } from "./proxy-process.ts";
import { type App, h1Request, h2Request, startH2App, startReplyingApp } from "./test-apps.ts";

const endpoint = (app: App) => ({ address: "127.0.0.1", port: app.port });

describe("routing policy: retries, budgets, timeouts, EWMA", () => {
  let destination: FakeDestination;
  let proxy: ProxyProcess;
  const apps: App[] = [];
  let good: App;
  let bad: App;
  let bad2: App;
  let slow: App;
  let fast: App;
  let laggy: App;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });

  before(async () => {
    destination = await new FakeDestination().start();
    good = await startReplyingApp({ text: "good" });
    bad = await startReplyingApp({ status: 503, text: "bad" });
    bad2 = await startReplyingApp({ status: 503, text: "bad2" });
    slow = await startReplyingApp({ text: "slow", delayMs: 2_000 });
    fast = await startReplyingApp({ text: "fast" });
    laggy = await startReplyingApp({ text: "laggy", delayMs: 60 });
    const slowGrpc = await startH2App((stream) => {
      setTimeout(() => {
        if (stream.destroyed) return;
        stream.respond({ ":status": 200, "content-type": "application/grpc" });
        stream.end();
      }, 2_000);
    });
    apps.push(good, bad, bad2, slow, fast, laggy, slowGrpc);
    destination.set("grpc.svc:80", {
      endpoints: [endpoint(slowGrpc)],
      routes: [{ name: "Echo", condition: { pathRegex: "/pkg\\.Echo/.*" }, timeout: "200ms" }],
    });
    const routes = [
      { name: "GET /items", condition: { method: "GET", pathRegex: "/items(/.*)?" }, isRetryable: true },
      { name: "POST /upload", condition: { method: "POST", pathRegex: "/upload" }, isRetryable: true },
      { name: "POST /orders", condition: { method: "POST", pathRegex: "/orders" }, isRetryable: false },
      { name: "GET /slow", condition: { method: "GET", pathRegex: "/slow" }, timeout: "200ms" },
    ];
    destination.set("shop.svc:80", { endpoints: [endpoint(good), endpoint(bad)], routes });
    destination.set("broken.svc:80", {
      endpoints: [endpoint(bad), endpoint(bad2)],
      routes,
      retryBudget: { retryRatio: 0, minRetriesPerSecond: 1, ttl: "10s" },
    });
    destination.set("slow.svc:80", { endpoints: [endpoint(slow)], routes });
    // An endpoint that refuses connections (a pod that went away) beside a good one.
    const closed = await startReplyingApp({ text: "closed" });
    await closed.close();
    destination.set("refusing.svc:80", { endpoints: [endpoint(closed), endpoint(good)], routes: [] });
    destination.set("mixed.svc:80", { endpoints: [endpoint(fast), endpoint(laggy)] });
    destination.set("empty.svc:80", { endpoints: [] });
    proxy = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      admin: { listen: "127.0.0.1:0" },
      destination: { url: destination.url },
      retries: { maxAttempts: 3 },
    });
  });

  after(async () => {
    agent.destroy();
    await proxy?.stop("SIGKILL");
    await Promise.all([destination?.close(), ...apps.map((a) => a.close())]);
  });

  const resetHits = () => {
    for (const a of apps) a.hits = 0;
  };

  it("retries an idempotent route so it succeeds when one endpoint fails", async () => {
    resetHits();
    for (let i = 0; i < 40; i++) {
      const res = await h1Request(proxy.ports.outbound!, { host: "shop.svc:80", path: `/items/${i}`, agent });
      assert.equal(res.status, 200, res.body);
      assert.match(res.body, /^good GET/);
    }
    assert.equal(good.hits, 40);
    const m = (await proxy.admin("/metrics")).body;
    assert.equal(metricValue(m, "retry_total", { authority: "shop.svc:80", route: "GET /items" }), bad.hits);
  });

  it("retries a buffered POST body on a retryable route, but not a streamed one", async () => {
    resetHits();
    for (let i = 0; i < 20; i++) {
      const res = await h1Request(proxy.ports.outbound!, {
        host: "shop.svc:80",
        method: "POST",
        path: "/upload",
        body: "payload",
        agent,
      });
      assert.equal(res.status, 200);
      assert.match(res.body, /^good POST \/upload 7/);
    }
    const streamed = await h1Request(proxy.ports.outbound!, {
      host: "shop.svc:80",
      method: "POST",
      path: "/upload",
      body: "payload",
      headers: { "transfer-encoding": "chunked" },
      agent,
    });
    assert.ok([200, 503].includes(streamed.status));
    const m = (await proxy.admin("/metrics")).body;
    assert.ok(
      metricValue(m, "retry_skipped_total", { route: "POST /upload", reason: "body_not_replayable" }) >= 1,
    );
  });

  it("does not retry a route that is not marked retryable", async () => {
    resetHits();
    let failures = 0;
    for (let i = 0; i < 40; i++) {
      const res = await h1Request(proxy.ports.outbound!, {
        host: "shop.svc:80",
        method: "POST",
        path: "/orders",
        body: "{}",
        agent,
      });
      if (res.status === 503) failures++;
    }
    assert.equal(good.hits + bad.hits, 40, "each request reached exactly one endpoint once");
    assert.equal(failures, bad.hits);
    const m = (await proxy.admin("/metrics")).body;
    assert.equal(metricValue(m, "retry_total", { route: "POST /orders" }), 0);
  });

  it("tries a request no endpoint received on another one, on any route", async () => {
    resetHits();
    for (let i = 0; i < 20; i++) {
      const res = await h1Request(proxy.ports.outbound!, {
        host: "refusing.svc:80",
        path: "/anything",
        agent,
      });
      assert.equal(res.status, 200, `request ${i}: ${res.headers["trellis-proxy-error"]}`);
    }
    assert.equal(good.hits, 20);
  });

  it("caps retries with the budget when every endpoint fails", async () => {
    resetHits();
    for (let i = 0; i < 50; i++) {
      const res = await h1Request(proxy.ports.outbound!, { host: "broken.svc:80", path: "/items", agent });
      assert.equal(res.status, 503);
    }
    // Budget: ratio 0 and 1 retry/s over a 10 s ttl allow 10 retries in the window.
    const attempts = bad.hits + bad2.hits;
    assert.ok(attempts >= 50 && attempts <= 61, `attempts ${attempts}`);
    const m = (await proxy.admin("/metrics")).body;
    assert.ok(
      metricValue(m, "retry_skipped_total", { authority: "broken.svc:80", reason: "budget_exhausted" }) >= 35,
    );
  });

  it("answers 504 when a route's timeout fires", async () => {
    const started = Date.now();
    const res = await h1Request(proxy.ports.outbound!, { host: "slow.svc:80", path: "/slow", agent });
    const elapsed = Date.now() - started;
    assert.equal(res.status, 504);
    assert.equal(res.headers["trellis-proxy-error"], "Timeout");
    assert.ok(elapsed >= 190 && elapsed < 1_500, `elapsed ${elapsed} ms`);
  });

  it("maps a gRPC deadline to grpc-status 4 in a trailers-only answer", async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    try {
      const res = await h2Request(session, {
        authority: "grpc.svc:80",
        path: "/pkg.Echo/Say",
        headers: { "content-type": "application/grpc", te: "trailers" },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers["grpc-status"], "4");
      assert.equal(res.headers["trellis-proxy-error"], "Timeout");
    } finally {
      session.close();
    }
  });

  it("counts a request the proxy answered itself, reaching no endpoint, as no_endpoint, not as plaintext", async () => {
    const h1 = await h1Request(proxy.ports.outbound!, { host: "empty.svc:80", path: "/", agent });
    assert.equal(h1.status, 503);
    assert.equal(h1.headers["trellis-proxy-error"], "NoEndpoints");
    const session = http2.connect(`http://127.0.0.1:${proxy.ports.outbound}`);
    try {
      // gRPC's answer is an HTTP 200 with grpc-status 14 (UNAVAILABLE).
      const res = await h2Request(session, {
        authority: "empty.svc:80",
        path: "/pkg.Echo/Say",
        headers: { "content-type": "application/grpc", te: "trailers" },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers["grpc-status"], "14");
    } finally {
      session.close();
    }
    const m = (await proxy.admin("/metrics")).body;
    const count = (labels: Record<string, string>) =>
      metricValue(m, "request_total", { direction: "outbound", authority: "empty.svc:80", ...labels });
    assert.equal(count({ tls: "none" }), 0, "nothing was sent, so nothing went without TLS");
    assert.equal(count({ tls: "no_endpoint", status_class: "5xx" }), 1, "the HTTP/1.1 request");
    assert.equal(count({ tls: "no_endpoint", status_class: "2xx" }), 1, "the gRPC request");
  });

  it("steers traffic away from a slow endpoint (peak-EWMA, power of two choices)", async () => {
    resetHits();
    const worker = async () => {
      for (let i = 0; i < 50; i++) {
        const res = await h1Request(proxy.ports.outbound!, { host: "mixed.svc:80", path: "/", agent });
        assert.equal(res.status, 200);
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    const total = fast.hits + laggy.hits;
    assert.equal(total, 200);
    assert.ok(laggy.hits < total * 0.2, `slow endpoint got ${laggy.hits} of ${total}`);
  });
});
