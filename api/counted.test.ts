import assert from "node:assert/strict";
import { test } from "node:test";
import { counted } from "./counted.ts";

test("counted: the singular for exactly one, the plural for anything else", () => {
  assert.equal(counted(1, "workload"), "1 workload");
  assert.equal(counted(0, "workload"), "0 workloads");
  assert.equal(counted(2, "workload"), "2 workloads");
  assert.equal(counted(1, "proxy", "proxies"), "1 proxy");
  assert.equal(counted(5, "proxy", "proxies"), "5 proxies");
});
