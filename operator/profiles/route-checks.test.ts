import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateServiceProfileSpec } from "../../api/index.ts";
import { checkServiceProfileSpec, unsafeRegexReason } from "./route-checks.ts";

describe("route checks", () => {
  const safe = ["/items/[^/]+", "/api/v[0-9]+/users", "(/a|/b)?/c", "/x(y)+", "/files/.*", "[(a+)+]"];
  for (const r of safe) it(`accepts ${r}`, () => assert.equal(unsafeRegexReason(r), undefined));
  const unsafe = ["(a+)+", "(a*)*b", "((ab)*)+", "(x{1,3})*", "(a)\\1"];
  for (const r of unsafe) it(`refuses ${r}`, () => assert.match(unsafeRegexReason(r) ?? "", /backtrack/));

  it("names the field of a regex that does not compile or is unsafe", () => {
    const spec = validateServiceProfileSpec({
      routes: [
        { name: "ok", condition: { pathRegex: "/ok" } },
        { name: "broken", condition: { pathRegex: "/items/(" } },
        { name: "slow", condition: { pathRegex: "/(a+)+$" } },
      ],
    });
    assert.ok(spec.ok);
    const problems = checkServiceProfileSpec(spec.value);
    assert.equal(problems.length, 2);
    assert.match(problems[0] ?? "", /^spec\.routes\[1\]\.condition\.pathRegex: does not compile/);
    assert.match(problems[1] ?? "", /^spec\.routes\[2\]\.condition\.pathRegex: .*nested quantifier/);
  });
});
