import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileRoute, parseDurationMs, selectRoute } from "../routes.ts";

describe("routes", () => {
  const routes = [
    compileRoute({
      name: "get-books",
      condition: { method: "GET", pathRegex: "/books/[^/]+" },
      isRetryable: true,
      timeout: "250ms",
    }),
    compileRoute({ name: "any-authors", condition: { pathRegex: "/authors(/.*)?" } }),
    compileRoute({
      name: "not-delete",
      condition: { all: [{ pathRegex: "/admin/.*" }, { not: { method: "DELETE" } }] },
      timeout: "2s",
    }),
  ];

  const table: [string, string, string][] = [
    ["GET", "/books/1", "get-books"],
    ["GET", "/books/1?x=/y", "get-books"],
    ["POST", "/books/1", "default"],
    ["GET", "/books/1/pages", "default"],
    ["DELETE", "/authors", "any-authors"],
    ["GET", "/admin/users", "not-delete"],
    ["DELETE", "/admin/users", "default"],
  ];
  for (const [method, path, expected] of table) {
    it(`${method} ${path} → ${expected}`, () =>
      assert.equal(selectRoute(routes, method, path).name, expected));
  }

  it("carries retryability and timeout", () => {
    const r = selectRoute(routes, "GET", "/books/9");
    assert.equal(r.isRetryable, true);
    assert.equal(r.timeoutMs, 250);
    assert.equal(selectRoute(routes, "GET", "/nothing").isRetryable, false);
  });

  it("parses durations and rejects nonsense", () => {
    assert.equal(parseDurationMs("1.5s"), 1500);
    assert.equal(parseDurationMs("2m"), 120_000);
    assert.equal(parseDurationMs(30), 30);
    assert.throws(() => parseDurationMs("soon"), /250ms/);
  });

  it("names the route when its condition is invalid", () => {
    assert.throws(() => compileRoute({ name: "bad", condition: {} }), /route "bad"/);
    assert.throws(() => compileRoute({ name: "re", condition: { pathRegex: "(" } }), /route "re"/);
  });
});
