// Which blocks of a trust bundle are usable anchors: a table of bundles a person or a broken
// pipeline could put in the ConfigMap, each with the anchors kept and the blocks dropped.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateKeyPair, toPem } from "../../pki/index.ts";
import { parseTrustBundle } from "../trust-anchors.ts";
import { createMeshCa, issueFor } from "./mesh-pki.ts";

const a = createMeshCa("a");
const b = createMeshCa("b");
const leafPem = issueFor(a, generateKeyPair().publicKey, { spiffeId: "spiffe://td/x", lifetimeMs: 60_000 })
  .split("-----END CERTIFICATE-----")[0]!
  .concat("-----END CERTIFICATE-----\n");
const junkCertificate = toPem("CERTIFICATE", Buffer.from("this is not DER at all, just text"));
const truncated = `${a.anchor.pem.slice(0, 200)}\n-----END CERTIFICATE-----\n`;

const cases: Array<{ name: string; text: string; anchors: string[]; dropped: RegExp[] }> = [
  { name: "one anchor", text: a.anchor.pem, anchors: [a.anchor.fingerprint], dropped: [] },
  {
    name: "two anchors with comments between them",
    text: `# old\n${a.anchor.pem}\n# new\n${b.anchor.pem}`,
    anchors: [a.anchor.fingerprint, b.anchor.fingerprint],
    dropped: [],
  },
  {
    name: "an anchor and a CERTIFICATE block whose body is not a certificate",
    text: a.anchor.pem + junkCertificate,
    anchors: [a.anchor.fingerprint],
    dropped: [/^block 2: not an X\.509 certificate/],
  },
  {
    name: "only a block that is not a certificate",
    text: junkCertificate,
    anchors: [],
    dropped: [/^block 1: not an X\.509 certificate/],
  },
  {
    name: "a leaf pasted beside the anchor",
    text: leafPem + a.anchor.pem,
    anchors: [a.anchor.fingerprint],
    dropped: [/^block 1: CN=<empty> is not a CA certificate/],
  },
  {
    name: "the issuer (a CA, usable as an anchor) and a truncated copy of the anchor",
    text: a.issuer.pem + truncated,
    anchors: [a.issuer.fingerprint],
    dropped: [/^block 2: (malformed PEM|not an X\.509 certificate)/],
  },
  {
    name: "a private key block",
    text: `${a.anchor.pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`,
    anchors: [a.anchor.fingerprint],
    dropped: [/^block 2: a "PRIVATE KEY" block, not a CERTIFICATE/],
  },
  {
    name: "a BEGIN line without its END, then a good anchor",
    text: `-----BEGIN CERTIFICATE-----\nMIIB\n${b.anchor.pem}`,
    anchors: [b.anchor.fingerprint],
    dropped: [/^block 1: a BEGIN line without its END line/],
  },
  {
    name: "mismatched BEGIN and END labels",
    text: `${a.anchor.pem.replace("-----END CERTIFICATE-----", "-----END X509 CRL-----")}${b.anchor.pem}`,
    anchors: [b.anchor.fingerprint],
    dropped: [/^block 1: BEGIN CERTIFICATE is closed by END X509 CRL/],
  },
  {
    name: "the same anchor twice counts once",
    text: a.anchor.pem + a.anchor.pem,
    anchors: [a.anchor.fingerprint],
    dropped: [],
  },
  { name: "an empty file", text: "", anchors: [], dropped: [] },
  { name: "text with no PEM at all", text: "garbage\n\u0000\u0001", anchors: [], dropped: [] },
];

describe("trust bundle blocks", () => {
  for (const c of cases) {
    it(c.name, () => {
      const parsed = parseTrustBundle(c.text);
      assert.deepEqual(
        parsed.anchors.map((x) => x.fingerprint),
        c.anchors,
      );
      const dropped = parsed.rejected.map((r) => `block ${r.block}: ${r.reason}`);
      assert.equal(dropped.length, c.dropped.length, dropped.join("\n"));
      for (const [i, re] of c.dropped.entries()) assert.match(dropped[i]!, re);
    });
  }
});
