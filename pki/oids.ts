// Pre-encoded OBJECT IDENTIFIER and AlgorithmIdentifier TLVs, built once at load. Decoders compare
// bytes against these instead of turning OIDs into strings on the hot path.

import { oid, sequence } from "./der-encode.ts";

export const OID = {
  ecPublicKey: oid("1.2.840.10045.2.1"),
  prime256v1: oid("1.2.840.10045.3.1.7"),
  ecdsaWithSha256: oid("1.2.840.10045.4.3.2"),
  ecdsaWithSha384: oid("1.2.840.10045.4.3.3"),
  ecdsaWithSha512: oid("1.2.840.10045.4.3.4"),
  sha256WithRsa: oid("1.2.840.113549.1.1.11"),
  sha384WithRsa: oid("1.2.840.113549.1.1.12"),
  sha512WithRsa: oid("1.2.840.113549.1.1.13"),
  commonName: oid("2.5.4.3"),
  extensionRequest: oid("1.2.840.113549.1.9.14"),
  subjectKeyIdentifier: oid("2.5.29.14"),
  keyUsage: oid("2.5.29.15"),
  subjectAltName: oid("2.5.29.17"),
  basicConstraints: oid("2.5.29.19"),
  authorityKeyIdentifier: oid("2.5.29.35"),
  extKeyUsage: oid("2.5.29.37"),
  serverAuth: oid("1.3.6.1.5.5.7.3.1"),
  clientAuth: oid("1.3.6.1.5.5.7.3.2"),
} as const;

/** AlgorithmIdentifier for ecdsa-with-SHA256; parameters are absent (RFC 5758 §3.2). */
export const ECDSA_WITH_SHA256 = sequence(OID.ecdsaWithSha256);

/**
 * Signature algorithms accepted when verifying. Trellis signs only with ECDSA P-256/SHA-256, but a
 * trust anchor brought from elsewhere may be RSA or use a larger hash.
 */
export const VERIFY_ALGORITHMS: ReadonlyArray<{ oid: Buffer; hash: string; rsa: boolean }> = [
  { oid: OID.ecdsaWithSha256, hash: "sha256", rsa: false },
  { oid: OID.ecdsaWithSha384, hash: "sha384", rsa: false },
  { oid: OID.ecdsaWithSha512, hash: "sha512", rsa: false },
  { oid: OID.sha256WithRsa, hash: "sha256", rsa: true },
  { oid: OID.sha384WithRsa, hash: "sha384", rsa: true },
  { oid: OID.sha512WithRsa, hash: "sha512", rsa: true },
];
