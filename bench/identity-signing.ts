// Part (a) of the identity benchmark: the identity service's signing path on one core — verify the
// CSR, check that it asks for exactly its ServiceAccount's SPIFFE ID, issue the 24 h leaf and build
// the answer's chain (controlplane/identity/certify.ts signCsr) — over 300 distinct CSRs in
// rotation, the same CSRs the pki benchmark's peers sign (bench/pki-workloads.ts).

import { signCsr } from "../controlplane/identity/certify.ts";
import { issuerFromSecret } from "../controlplane/identity/issuer.ts";
import { DAY_MS, testAnchor, testIssuer } from "../controlplane/identity/testing/identity-fixture.ts";
import { pemBlocks, privateKeyToPem, spiffeIdFor, verifyChain } from "../pki/index.ts";
import { measureSync } from "./pki-measure.ts";
import type { Workload } from "./pki-workloads.ts";

export const TRUST_DOMAIN = "cluster.local";

/** The ServiceAccount of CSR i in bench/pki-workloads.ts ecdsaCsrs(): ns-<i>/workload. */
export function accountOfCsr(i: number): { namespace: string; name: string } {
  return { namespace: `ns-${i}`, name: "workload" };
}

export function identitySigningWorkload(csrs: Buffer[]): Workload {
  const anchor = testAnchor("Bench Identity Root");
  const material = testIssuer(anchor, "Bench Identity Issuer");
  const issuer = issuerFromSecret({
    "tls.crt": material.cert.pem,
    "tls.key": privateKeyToPem(material.keys.privateKey),
    "ca.crt": anchor.cert.pem,
  });
  const policy = { trustDomain: TRUST_DOMAIN, lifetimeMs: DAY_MS };
  const accounts = csrs.map((_, i) => accountOfCsr(i));
  const sign = (i: number) => {
    const k = i % csrs.length;
    return signCsr(csrs[k] ?? Buffer.alloc(0), accounts[k] ?? accountOfCsr(0), issuer, policy);
  };
  return {
    peer: "Trellis identity signing path (signCsr)",
    work: "csr",
    note: "CSR verify + identity check + leaf + chain",
    sample: async () => {
      const chain = pemBlocks(sign(0).certificateChainPem, "CERTIFICATE");
      const verified = verifyChain(chain, [anchor.cert.der]);
      if (!verified.ok || verified.spiffeId !== spiffeIdFor(TRUST_DOMAIN, "ns-0", "workload")) {
        throw new Error(`the signing path's sample does not verify: ${JSON.stringify(verified)}`);
      }
      return { der: chain[0] ?? Buffer.alloc(0), issuerDer: material.cert.der };
    },
    run: async (seconds) => measureSync(sign, seconds),
  };
}
