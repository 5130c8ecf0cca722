import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDiscoveryUpdate, splitLines } from "../discovery-protocol.ts";

describe("discovery protocol", () => {
  it("parses a full update", () => {
    const u = parseDiscoveryUpdate({
      endpoints: [
        { address: "10.0.0.1", port: 8080, identity: "spiffe://td/ns/a/sa/b" },
        { address: "10.0.0.2", port: 8080 },
      ],
      routes: [
        { name: "r", condition: { method: "GET", pathRegex: "/x" }, isRetryable: true, timeout: "1s" },
      ],
      retryBudget: { retryRatio: 0.2, minRetriesPerSecond: 10, ttl: "10s" },
    });
    assert.equal(u.endpoints.length, 2);
    assert.equal(u.endpoints[1]!.identity, undefined);
    assert.equal(u.routes[0]!.isRetryable, true);
    assert.equal(u.retryBudget?.ttl, "10s");
  });

  it("names the bad field", () => {
    assert.throws(
      () => parseDiscoveryUpdate({ endpoints: [{ address: "a", port: 0 }] }),
      /endpoints\[0\]\.port/,
    );
    assert.throws(
      () => parseDiscoveryUpdate({ routes: [{ name: "r", condition: { method: 1 } }] }),
      /routes\[0\]\.condition\.method/,
    );
    assert.throws(() => parseDiscoveryUpdate([]), /JSON object/);
  });

  it("splits newline-delimited JSON across chunk boundaries and bounds a line", () => {
    const a = splitLines("", '{"a":1}\n{"b"', 100);
    assert.deepEqual(a.lines, ['{"a":1}']);
    const b = splitLines(a.rest, ":2}\n\n", 100);
    assert.deepEqual(b.lines, ['{"b":2}']);
    assert.throws(() => splitLines("", "x".repeat(101), 100), /longer than 100/);
  });
});
