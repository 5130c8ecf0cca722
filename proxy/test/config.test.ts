import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig, parseHostPort } from "../config.ts";

describe("config", () => {
  it("accepts a minimal outbound config and fills defaults", () => {
    const r = parseConfig({ outbound: { listen: "127.0.0.1:4140" } });
    assert.ok(r.ok);
    assert.equal(r.config.limits.maxConnections, 10_000);
    assert.deepEqual(r.config.admin.listen, { host: "127.0.0.1", port: 4191 });
    assert.equal(r.config.retries.maxAttempts, 3);
  });

  it("reports every problem with its path", () => {
    const r = parseConfig({
      inbound: { listen: "x" },
      limits: { maxHeaderBytes: 5 },
      identity: { url: "https://id:8080", spiffeId: "nope" },
      logLevel: "loud",
    });
    assert.ok(!r.ok);
    const text = r.errors.join("\n");
    for (const expected of [
      "inbound.listen: expected host:port",
      "inbound.app: required",
      "limits.maxHeaderBytes: expected a number from 1024",
      "identity.tokenPath: required",
      "identity.trustBundlePath: required",
      "identity.spiffeId: expected spiffe://",
      "config.logLevel: expected one of",
    ]) {
      assert.ok(text.includes(expected), `missing "${expected}" in:\n${text}`);
    }
  });

  it("refuses an inbound side that could accept nothing", () => {
    const r = parseConfig({ inbound: { listen: "127.0.0.1:1", app: "127.0.0.1:2" } });
    assert.ok(!r.ok);
    assert.match(r.errors.join(), /allowPlaintext or identity/);
  });

  it("parses host:port, including IPv6", () => {
    assert.deepEqual(parseHostPort("[::1]:80"), { host: "::1", port: 80 });
    assert.deepEqual(parseHostPort("web.svc:8080"), { host: "web.svc", port: 8080 });
    assert.equal(parseHostPort("web.svc"), undefined);
    assert.equal(parseHostPort("a:99999"), undefined);
  });
});
