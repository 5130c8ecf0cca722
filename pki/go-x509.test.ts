// Certificates pki issues, read by Go's crypto/x509 — the strict DER parser and chain verifier of
// Linkerd's control plane, Kubernetes and most Go TLS stacks — through pki/testing/go-x509-verify.
// Complements certificate-issue.test.ts (node:crypto, openssl, @peculiar/x509): the issuing path
// writes each certificate into one buffer from pre-encoded parts, and a length or an offset off
// by one byte is refused here. Skipped (with a note) where Go is not installed.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createCsr, generateKeyPair, issueLeaf, parseCsr, spiffeIdFor, toPem } from "./index.ts";
import { DAY, fromNow, issuer, trustAnchor } from "./testing/hierarchy.ts";

const SOURCE = fileURLToPath(new URL("./testing/go-x509-verify/", import.meta.url));

interface GoResult {
  name: string;
  error?: string;
  uris: string[];
  dns: string[];
}

function buildVerifier(): string | undefined {
  if (spawnSync("go", ["version"]).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "trellis-go-x509-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const binary = join(dir, "go-x509-verify");
  const build = spawnSync("go", ["build", "-o", binary, "."], { cwd: SOURCE, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`go build failed: ${build.stderr}`);
  return binary;
}

const verifier = buildVerifier();

function goVerify(anchorsPem: string, chains: Array<{ name: string; chainPem: string; dnsName?: string }>) {
  const input = JSON.stringify({ anchorsPem, at: Math.floor(Date.now() / 1000), chains });
  const run = spawnSync(verifier ?? "false", [], { input, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`go-x509-verify failed: ${run.stderr}`);
  return new Map((JSON.parse(run.stdout) as GoResult[]).map((r) => [r.name, r]));
}

describe("Go crypto/x509 parses and verifies what pki issues", {
  skip: verifier ? false : "go is not installed",
}, () => {
  const root = trustAnchor("Go Check Root");
  const mid = issuer("Go Check Issuer", root);
  const spiffeId = spiffeIdFor("cluster.local", "shop", "checkout");
  const request = parseCsr(createCsr({ keyPair: generateKeyPair(), spiffeId }).der);
  const names = Array.from({ length: 12 }, (_, i) => `replica-${i}.checkout.shop.svc.cluster.local`);
  const leaf = (o: Omit<Parameters<typeof issueLeaf>[0], "signer" | "notAfter">) =>
    issueLeaf({ ...o, signer: mid.signer, notAfter: fromNow(DAY) });
  const chains = [
    { name: "workload leaf from a verified CSR", cert: leaf({ publicKey: request, spiffeId }) },
    {
      name: "serving leaf with CN, DNS and IP names",
      cert: leaf({
        publicKey: generateKeyPair().publicKey,
        commonName: "trellis-identity",
        dnsNames: ["identity.trellis-system.svc"],
        ipAddresses: ["127.0.0.1", "fd00::1"],
      }),
      dnsName: "identity.trellis-system.svc",
    },
    {
      name: "leaf with twelve DNS names (two-byte DER lengths)",
      cert: leaf({ publicKey: request, commonName: "checkout", dnsNames: names }),
      dnsName: names[11],
    },
  ].map((c) => ({ ...c, chainPem: c.cert.pem + mid.certificate.pem }));
  // A hierarchy past 2049: the leaf's notAfter is a GeneralizedTime.
  const longRoot = trustAnchor("Go Check Root 2070", { notAfter: new Date("2070-01-01T00:00:00Z") });
  const longMid = issuer("Go Check Issuer 2060", longRoot, { notAfter: new Date("2060-01-01T00:00:00Z") });
  const late = issueLeaf({
    publicKey: request,
    spiffeId,
    signer: longMid.signer,
    notAfter: new Date("2055-06-30T12:00:00Z"),
  });
  chains.push({
    name: "leaf valid past 2049 (GeneralizedTime)",
    cert: late,
    chainPem: late.pem + longMid.certificate.pem,
  });
  const anchorsPem = root.certificate.pem + longRoot.certificate.pem;

  test("every chain verifies for serverAuth and clientAuth, with the names it was issued", () => {
    const results = goVerify(anchorsPem, chains);
    for (const c of chains) {
      const r = results.get(c.name);
      assert.equal(r?.error, undefined, `${c.name}: ${r?.error}`);
    }
    assert.deepEqual(results.get(chains[0]!.name)?.uris, [spiffeId]);
    assert.deepEqual(results.get(chains[2]!.name)?.dns, names);
  });

  test("a certificate whose bytes were changed is refused (the check can fail)", () => {
    const der = Buffer.from(chains[0]!.cert.der);
    der[der.length - 40] = (der[der.length - 40] ?? 0) ^ 0x01; // inside the signature
    const results = goVerify(anchorsPem, [
      { name: "tampered", chainPem: toPem("CERTIFICATE", der) + mid.certificate.pem },
    ]);
    assert.match(results.get("tampered")?.error ?? "", /signature|parse|malformed|x509/i);
    const other = goVerify(trustAnchor("Other Root").certificate.pem, [
      { name: "unknown anchor", chainPem: chains[0]!.chainPem },
    ]);
    assert.match(other.get("unknown anchor")?.error ?? "", /unknown authority/);
  });
});
