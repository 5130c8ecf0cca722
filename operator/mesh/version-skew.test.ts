import assert from "node:assert/strict";
import { describe, it, test } from "node:test";
import { checkVersionChange, proxySkew } from "./version-skew.ts";

describe("version skew policy", () => {
  const table: Array<[string | undefined, string, boolean, true | string]> = [
    [undefined, "1.0.0", false, true],
    ["1.0.0", "1.0.0", false, true],
    ["1.0.0", "1.0.5", false, true],
    ["1.0.0", "1.1.0", false, true],
    ["1.0.3", "1.1.0-rc.1", false, true],
    ["1.1.0", "1.0.9", false, "Downgrade"],
    ["1.1.0", "1.1.0-rc.1", false, "Downgrade"],
    ["1.1.0", "1.0.9", true, true],
    ["1.0.0", "1.2.0", false, "SkipsMinorRelease"],
    ["1.0.0", "1.2.0", true, true],
    ["1.9.0", "2.0.0", false, "MajorUpgrade"],
    ["1.0.0", "latest", false, "InvalidVersion"],
    ["1.0.0", "latest", true, "InvalidVersion"],
  ];
  for (const [running, desired, force, expected] of table) {
    it(`${running ?? "(none)"} → ${desired}${force ? " (forced)" : ""}: ${expected === true ? "allowed" : expected}`, () => {
      const verdict = checkVersionChange(running, desired, force);
      if (expected === true) assert.deepEqual(verdict, { allowed: true });
      else {
        assert.equal(verdict.allowed, false);
        if (!verdict.allowed) {
          assert.equal(verdict.reason, expected);
          assert.match(verdict.message, /\S/);
        }
      }
    });
  }
});

test("proxies within one minor release of the control plane, either way, are inside the skew policy", () => {
  assert.equal(proxySkew("1.4.2", "1.4.0"), undefined);
  assert.equal(proxySkew("1.4.2", "1.3.9"), undefined);
  assert.equal(proxySkew("1.4.2", "1.5.0-rc.1"), undefined);
  assert.match(proxySkew("1.4.2", "1.2.7") ?? "", /2 minor releases older/);
  assert.match(proxySkew("1.4.2", "1.6.0") ?? "", /2 minor releases newer/);
  assert.match(proxySkew("1.4.2", "2.4.2") ?? "", /different major/);
  assert.match(proxySkew("1.4.2", "latest") ?? "", /cannot be compared/);
});
