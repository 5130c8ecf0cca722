// Identity names: SPIFFE IDs (spiffeIdFor, validateSpiffeId), DNS names and IP addresses as they
// go into and come back out of certificates.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  generateKeyPair,
  issueLeaf,
  PkiError,
  parseCertificate,
  spiffeIdFor,
  validateSpiffeId,
} from "./index.ts";
import { bytesToIp, ipToBytes, validateDnsName } from "./subject-alt-names.ts";
import { DAY, fromNow, issuer, trustAnchor } from "./testing/hierarchy.ts";

const isCode = (code: string) => (e: unknown) => e instanceof PkiError && e.code === code;

describe("spiffeIdFor", () => {
  test("builds spiffe://<td>/ns/<ns>/sa/<sa>", () => {
    assert.equal(
      spiffeIdFor("cluster.local", "shop", "checkout"),
      "spiffe://cluster.local/ns/shop/sa/checkout",
    );
    assert.equal(
      spiffeIdFor("prod.example_td", "a-b", "ci.robot"),
      "spiffe://prod.example_td/ns/a-b/sa/ci.robot",
    );
  });
  const bad = [
    ["", "ns", "sa"],
    ["Cluster.Local", "ns", "sa"],
    ["td/x", "ns", "sa"],
    ["td", "", "sa"],
    ["td", "Shop", "sa"],
    ["td", "-shop", "sa"],
    ["td", "a".repeat(64), "sa"],
    ["td", "ns", ""],
    ["td", "ns", "sa/other"],
    ["td", "ns", "a..b"],
  ] as const;
  for (const [td, ns, sa] of bad) {
    test(`refuses (${JSON.stringify(td)}, ${JSON.stringify(ns)}, ${JSON.stringify(sa)})`, () => {
      assert.throws(() => spiffeIdFor(td, ns, sa), isCode("InvalidSpiffeId"));
    });
  }
});

describe("validateSpiffeId", () => {
  const good = ["spiffe://cluster.local/ns/shop/sa/checkout", "spiffe://td/a", "spiffe://td/A_b-c.d/e"];
  const bad = [
    "spiffe://cluster.local",
    "spiffe://cluster.local/",
    "spiffe://cluster.local/ns//sa",
    "spiffe://cluster.local/ns/./sa",
    "spiffe://cluster.local/ns/../sa",
    "spiffe://cluster.local/ns/shop/",
    "spiffe://Cluster.local/ns/shop",
    "spiffe:///ns/shop",
    "SPIFFE://td/ns",
    "spiffe://td/ns?query",
    "spiffe://td/ns#frag",
    "spiffe://td:8080/ns",
    "spiffe://user@td/ns",
    "https://td/ns",
    `spiffe://td/${"a".repeat(2048)}`,
  ];
  for (const id of good) test(`accepts ${id}`, () => validateSpiffeId(id));
  for (const id of bad) {
    test(`refuses ${id.slice(0, 60)}`, () => {
      assert.throws(() => validateSpiffeId(id), isCode("InvalidSpiffeId"));
    });
  }
});

describe("DNS names", () => {
  const good = ["localhost", "trellis-webhook.trellis-system.svc", "*.mesh.example.com", "a.b.c.d.e", "x1"];
  const bad = [
    "",
    "-lead.svc",
    "trail-.svc",
    "under_score.svc",
    "a..b",
    "trailing.dot.",
    "*",
    "a.*.b",
    "é.svc",
    `${"a".repeat(64)}.svc`,
  ];
  for (const name of good) test(`accepts ${name}`, () => validateDnsName(name));
  for (const name of bad) {
    test(`refuses ${JSON.stringify(name)}`, () => {
      assert.throws(() => validateDnsName(name), isCode("InvalidDnsName"));
    });
  }
});

describe("IP addresses", () => {
  const cases = [
    { text: "127.0.0.1", hex: "7f000001", back: "127.0.0.1" },
    { text: "0.0.0.0", hex: "00000000", back: "0.0.0.0" },
    { text: "::1", hex: `${"0".repeat(30)}01`, back: "::1" },
    { text: "::", hex: "0".repeat(32), back: "::" },
    { text: "FD00:10::2A", hex: "fd00001000000000000000000000002a", back: "fd00:10::2a" },
    { text: "2001:db8:0:0:1:0:0:1", hex: "20010db8000000000001000000000001", back: "2001:db8::1:0:0:1" },
    { text: "::ffff:10.1.2.3", hex: "00000000000000000000ffff0a010203", back: "::ffff:a01:203" },
    { text: "1:2:3:4:5:6:7:8", hex: "00010002000300040005000600070008", back: "1:2:3:4:5:6:7:8" },
  ];
  for (const c of cases) {
    test(`${c.text} encodes to ${c.hex.length / 2} bytes and reads back as ${c.back}`, () => {
      assert.equal(ipToBytes(c.text).toString("hex"), c.hex);
      assert.equal(bytesToIp(ipToBytes(c.text)), c.back);
    });
  }
  for (const bad of ["127.0.0.256", "1.2.3", "01.2.3.4", "::1%eth0", "1::2::3", "localhost", "", "12345::"]) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => ipToBytes(bad), isCode("InvalidIpAddress"));
    });
  }

  test("IP SANs survive issuance and parsing", () => {
    const root = trustAnchor("Root");
    const mid = issuer("Issuer", root);
    const ips = ["127.0.0.1", "::1", "10.96.0.10", "fd00::53"];
    const leaf = issueLeaf({
      publicKey: generateKeyPair().publicKey,
      signer: mid.signer,
      ipAddresses: ips,
      notAfter: fromNow(DAY),
    });
    assert.deepEqual(parseCertificate(leaf.der).ipAddresses, ips);
  });
});
