// The capture rules as text (golden files, one per case) and their reading back. Regenerate the
// golden files with UPDATE_GOLDEN=1. The rules are applied for real in init.test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { assertGolden } from "../test/golden.ts";
import { podCaptureOf } from "./annotations.ts";
import type { IpFamily } from "./capture-settings.ts";
import { CAPTURE_CHAINS, capturePresence, captureRules, captureRuleset, installedJumps } from "./ruleset.ts";

const testdata = fileURLToPath(new URL("./testdata", import.meta.url));

const cases: Array<{ name: string; annotations: Record<string, string>; family: IpFamily }> = [
  { name: "defaults-ipv4", annotations: {}, family: 4 },
  { name: "defaults-ipv6", annotations: {}, family: 6 },
  {
    name: "skips-ipv4",
    annotations: {
      "config.trellis.dev/skip-inbound-ports": "9090, 8000-8010",
      "config.trellis.dev/skip-outbound-ports": "5432,6379",
      "config.trellis.dev/skip-subnets": "169.254.169.254/32,fd00:ec2::254/128,10.96.0.0/12",
    },
    family: 4,
  },
  {
    name: "skips-ipv6",
    annotations: {
      "config.trellis.dev/skip-inbound-ports": "9090, 8000-8010",
      "config.trellis.dev/skip-outbound-ports": "5432,6379",
      "config.trellis.dev/skip-subnets": "169.254.169.254/32,fd00:ec2::254/128,10.96.0.0/12",
    },
    family: 6,
  },
];

describe("capture ruleset", () => {
  for (const c of cases) {
    it(`${c.name}: golden`, () => {
      const { settings, problems } = podCaptureOf(c.annotations, {});
      assert.deepEqual(problems, []);
      assertGolden(join(testdata, `${c.name}.rules`), captureRuleset(settings, c.family));
    });
  }

  it("redirects last in each chain, after every exception, and never redirects the proxy to itself", () => {
    const { settings } = podCaptureOf({ "config.trellis.dev/skip-inbound-ports": "80" }, {});
    const rules = captureRules(settings, 4);
    const inbound = rules.filter((r) => r.startsWith(`-A ${CAPTURE_CHAINS.inbound} `));
    const outbound = rules.filter((r) => r.startsWith(`-A ${CAPTURE_CHAINS.outbound} `));
    assert.match(inbound.at(-1) ?? "", /-p tcp -j REDIRECT --to-ports 4143$/);
    assert.match(outbound.at(-1) ?? "", /-p tcp -j REDIRECT --to-ports 4140$/);
    assert.equal(inbound.filter((r) => r.includes("REDIRECT")).length, 1);
    assert.equal(outbound.filter((r) => r.includes("REDIRECT")).length, 1);
    for (const port of [80, 4140, 4143, 4191])
      assert.ok(
        inbound.includes(`-A TRELLIS_INBOUND -p tcp --dport ${port} -j RETURN`),
        `inbound skips ${port}`,
      );
    assert.equal(outbound[0], "-A TRELLIS_OUTPUT -m owner --uid-owner 2102 -j RETURN");
    assert.ok(outbound.includes("-A TRELLIS_OUTPUT -o lo -j RETURN"));
  });

  it("adds only the jumps a saved table lacks, so a second run installs nothing twice", () => {
    const { settings } = podCaptureOf({}, {});
    const first = captureRuleset(settings, 4);
    assert.match(first, /^-A PREROUTING -j TRELLIS_INBOUND$/m);
    assert.match(first, /^-A OUTPUT -j TRELLIS_OUTPUT$/m);
    // What iptables-save prints after the first run (plus another plugin's rule).
    const saved = [
      "*nat",
      ":PREROUTING ACCEPT [0:0]",
      ":OUTPUT ACCEPT [0:0]",
      ":TRELLIS_INBOUND - [0:0]",
      ":TRELLIS_OUTPUT - [0:0]",
      "-A OUTPUT -d 10.0.0.1/32 -p tcp -m tcp --dport 443 -j DNAT --to-destination 10.253.4.1:6443",
      "-A PREROUTING -j TRELLIS_INBOUND",
      "-A OUTPUT -j TRELLIS_OUTPUT",
      "-A TRELLIS_INBOUND -p tcp -m tcp --dport 4143 -j RETURN",
      "COMMIT",
    ].join("\n");
    assert.deepEqual(installedJumps(saved), { inbound: true, outbound: true });
    const second = captureRuleset(settings, 4, installedJumps(saved));
    assert.doesNotMatch(second, /^-A (PREROUTING|OUTPUT) /m);
    assert.match(second, /^:TRELLIS_INBOUND - \[0:0\]$/m, "declaring the chain flushes it before the refill");
    assert.deepEqual(capturePresence(saved), {
      rules: { TRELLIS_INBOUND: 1, TRELLIS_OUTPUT: 0 },
      jumps: { TRELLIS_INBOUND: 1, TRELLIS_OUTPUT: 1 },
    });
    assert.deepEqual(installedJumps(saved.replace("-A OUTPUT -j TRELLIS_OUTPUT\n", "")), {
      inbound: true,
      outbound: false,
    });
  });

  it("puts each skip subnet in its own family's table only", () => {
    const { settings } = podCaptureOf({ "config.trellis.dev/skip-subnets": "10.0.0.0/8,fd00::/8" }, {});
    assert.deepEqual(
      captureRules(settings, 4).filter((r) => r.includes(" -d ")),
      ["-A TRELLIS_OUTPUT -d 10.0.0.0/8 -j RETURN"],
    );
    assert.deepEqual(
      captureRules(settings, 6).filter((r) => r.includes(" -d ")),
      ["-A TRELLIS_OUTPUT -d fd00::/8 -j RETURN"],
    );
  });
});
