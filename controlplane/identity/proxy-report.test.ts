// The trust report's checks and the pod it is written to, as a table; the write itself runs
// against a real API server in test/integration/proxy-trust-report.test.ts.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CertifyError } from "./certify-errors.ts";
import { parseReport, reportAnnotations, reportedPod } from "./proxy-report.ts";
import { accountOf, POD_NAME_EXTRA, POD_UID_EXTRA } from "./token-review.ts";

const A = "a".repeat(64);
const B = "b".repeat(64);
const body = (o: unknown) => Buffer.from(typeof o === "string" ? o : JSON.stringify(o));
const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof CertifyError, String(err));
    return err.code;
  }
  return "accepted";
};

describe("proxy trust reports", () => {
  it("accepts a bundle and the anchor its leaf chains to, and names the two annotations", () => {
    const report = parseReport(body({ trustBundleFingerprints: [A, B], leafAnchorFingerprint: B }));
    assert.deepEqual(reportAnnotations(report), {
      "trellis.dev/trust-bundle-fingerprints": `${A},${B}`,
      "trellis.dev/leaf-anchor-fingerprint": B,
    });
    // no leaf yet: the leaf annotation is removed (merge patch null)
    assert.deepEqual(reportAnnotations(parseReport(body({ trustBundleFingerprints: [A] }))), {
      "trellis.dev/trust-bundle-fingerprints": A,
      "trellis.dev/leaf-anchor-fingerprint": null,
    });
  });

  const refused: Array<[string, unknown]> = [
    ["not JSON", "{"],
    ["an array", [A]],
    ["no bundle", { leafAnchorFingerprint: A }],
    ["an empty bundle", { trustBundleFingerprints: [] }],
    ["a short fingerprint", { trustBundleFingerprints: ["abc"] }],
    ["upper-case hex", { trustBundleFingerprints: [A.toUpperCase()] }],
    ["too many anchors", { trustBundleFingerprints: Array(9).fill(A) }],
    ["a leaf anchor outside the bundle", { trustBundleFingerprints: [A], leafAnchorFingerprint: B }],
    ["a malformed leaf anchor", { trustBundleFingerprints: [A], leafAnchorFingerprint: 7 }],
  ];
  for (const [what, value] of refused) {
    it(`refuses ${what} as InvalidReport`, () => {
      assert.equal(
        code(() => parseReport(body(value))),
        "InvalidReport",
      );
    });
  }

  it("writes to the pod the API server names in the TokenReview, and refuses tokens of no pod", () => {
    const user = { username: "system:serviceaccount:shop:web" };
    const bound = accountOf(
      {
        authenticated: true,
        audiences: ["identity.trellis.dev"],
        user: { ...user, extra: { [POD_NAME_EXTRA]: ["web-1"], [POD_UID_EXTRA]: ["u-1"] } },
      },
      "identity.trellis.dev",
    );
    assert.deepEqual(reportedPod(bound), { namespace: "shop", name: "web-1", uid: "u-1" });
    const unbound = accountOf(
      { authenticated: true, audiences: ["identity.trellis.dev"], user },
      "identity.trellis.dev",
    );
    assert.equal(
      code(() => reportedPod(unbound)),
      "NotBoundToPod",
    );
  });
});
