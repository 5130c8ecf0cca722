// Event messages never carry key material or tokens (table test of the scrubber; the recorder
// itself is exercised against the API server in controller.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { scrubMessage } from "./events.ts";

describe("scrubMessage", () => {
  const pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBk\n-----END EC PRIVATE KEY-----";
  const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJlc2ln";
  const cases: Array<{ name: string; input: string; want: string }> = [
    {
      name: "plain text is unchanged",
      input: "issued certificate for web",
      want: "issued certificate for web",
    },
    { name: "a PEM block", input: `bad key ${pem} here`, want: "bad key [redacted PEM block] here" },
    {
      name: "a truncated PEM block",
      input: "x -----BEGIN CERTIFICATE-----\nMIIB",
      want: "x [redacted PEM block]",
    },
    {
      name: "a service-account JWT",
      input: `token ${jwt} rejected`,
      want: "token [redacted token] rejected",
    },
    {
      name: "a bearer header",
      input: "Authorization: Bearer abcdef123456789",
      want: "Authorization: Bearer[redacted]",
    },
    { name: "token=value", input: "login with token=s3cr3tvalue99", want: "login with token=[redacted]" },
  ];
  for (const c of cases) {
    it(c.name, () => assert.equal(scrubMessage(c.input), c.want));
  }

  it("cuts long messages to 1 KiB", () => {
    const out = scrubMessage("x".repeat(5000));
    assert.equal(out.length, 1024);
    assert.ok(out.endsWith("..."));
  });
});
