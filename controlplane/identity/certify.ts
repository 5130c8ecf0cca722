// The signing path of the identity service: given the CSR a proxy sent and the ServiceAccount its
// token authenticated, check that the CSR asks for exactly that ServiceAccount's SPIFFE ID and
// nothing more, then issue a leaf from the current issuer and answer with the chain.
// Pure apart from the signature itself. Owns the identity rule and the shape of the answer; does
// not own authentication (token-review.ts), the issuer's origin (issuer-source.ts) or transport
// (certify-server.ts).
import { issueLeaf, PkiError, parseCsr, spiffeIdFor } from "../../pki/index.ts";
import { CertifyError, type CertifyErrorCode } from "./certify-errors.ts";
import type { Issuer } from "./issuer.ts";

export interface ServiceAccountRef {
  namespace: string;
  name: string;
  /** The pod the token is bound to (TokenReview user.extra), when it is a pod-bound token. */
  pod?: { name: string; uid: string } | undefined;
}

export interface CertifyAnswer {
  /** Leaf first, then the issuer's chain; never the trust anchor. */
  certificateChainPem: string;
  /** RFC 3339 in whole seconds, e.g. 2026-11-26T18:00:00Z. */
  notAfter: string;
}

export interface SigningPolicy {
  trustDomain: string;
  lifetimeMs: number;
}

const CSR_FAILURES = new Set<CertifyErrorCode>([
  "MalformedCsr",
  "BadCsrSignature",
  "UnsupportedAlgorithm",
  "UnsupportedKey",
  "InvalidSpiffeId",
]);

function csrError(err: unknown): CertifyError {
  if (err instanceof PkiError) {
    const code = CSR_FAILURES.has(err.code as CertifyErrorCode)
      ? (err.code as CertifyErrorCode)
      : "MalformedCsr";
    return new CertifyError(code, err.message);
  }
  return new CertifyError("MalformedCsr", "the body is not a PKCS#10 certificate request");
}

/** Throws IdentityMismatch unless the CSR asks for `expected` and only that. */
export function checkRequestedIdentity(
  requested: { spiffeId?: string; dnsNames: string[] },
  expected: string,
  account: ServiceAccountRef,
): void {
  const who = `the token authenticates ServiceAccount ${account.namespace}/${account.name}`;
  if (requested.spiffeId === undefined) {
    throw new CertifyError(
      "IdentityMismatch",
      `the CSR carries no SPIFFE ID; ${who}, so it must ask for ${expected}`,
    );
  }
  if (requested.spiffeId !== expected) {
    throw new CertifyError(
      "IdentityMismatch",
      `the CSR asks for ${requested.spiffeId}, but ${who}, whose identity is ${expected}`,
    );
  }
  if (requested.dnsNames.length > 0) {
    throw new CertifyError(
      "IdentityMismatch",
      `the CSR also asks for DNS names (${requested.dnsNames.join(", ")}); a proxy gets only ${expected}`,
    );
  }
}

/** The last answer's notAfter text: leaves issued within the same second share it. */
let lastNotAfter = { ms: Number.NaN, text: "" };

function wholeSecondsIso(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastNotAfter.ms) lastNotAfter = { ms, text: `${date.toISOString().slice(0, 19)}Z` };
  return lastNotAfter.text;
}

/** Verifies the CSR, checks its identity against `account` and issues the leaf. */
export function signCsr(
  csr: Buffer | string,
  account: ServiceAccountRef,
  issuer: Issuer,
  policy: SigningPolicy,
  now: number = Date.now(),
): CertifyAnswer {
  let request: ReturnType<typeof parseCsr>;
  try {
    request = parseCsr(csr);
  } catch (err) {
    throw csrError(err);
  }
  const expected = spiffeIdFor(policy.trustDomain, account.namespace, account.name);
  checkRequestedIdentity(request, expected, account);
  if (issuer.notAfter.getTime() <= now) {
    throw new CertifyError("IssuerExpired", `the issuer expired at ${issuer.notAfter.toISOString()}`);
  }
  let leaf: ReturnType<typeof issueLeaf>;
  try {
    leaf = issueLeaf({
      publicKey: request,
      signer: issuer.signer,
      spiffeId: expected,
      notAfter: new Date(now + policy.lifetimeMs),
    });
  } catch (err) {
    if (err instanceof PkiError && err.code === "SignerExpired")
      throw new CertifyError("IssuerExpired", err.message);
    throw err;
  }
  return { certificateChainPem: leaf.pem + issuer.chainPem, notAfter: wholeSecondsIso(leaf.notAfter) };
}
