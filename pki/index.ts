// Public surface of the pki module — keys, certificates, CSRs and trust bundles for the operator,
// the control plane and the proxy. Bottom layer: imports nothing outside pki/ but node builtins.

export { type CertificateInfo, fingerprint, leafSpiffeId, parseCertificate } from "./certificate-info.ts";
export {
  createIssuer,
  createTrustAnchor,
  type IssuedCertificate,
  issueLeaf,
  type Signer,
} from "./certificate-issue.ts";
export { type ChainResult, verifyChain } from "./chain-verify.ts";
export { type CertificateRequest, createCsr, parseCsr } from "./csr.ts";
export { PkiError, type PkiErrorCode } from "./errors.ts";
export { generateKeyPair, type KeyPair, privateKeyFromPem, privateKeyToPem } from "./keys.ts";
export { type PemLabel, pemBlocks, toPem } from "./pem.ts";
export { isSpiffeId, spiffeIdFor, validateSpiffeId } from "./spiffe.ts";
