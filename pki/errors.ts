// PkiError: the one error type the pki module throws. Each failure carries a stable CamelCase `code`
// (callers branch on it, conditions reuse it as a reason) and a message a person can act on.
// Messages never include key material or certificate bodies.

export type PkiErrorCode =
  | "MalformedDer"
  | "MalformedPem"
  | "MalformedCsr"
  | "BadCsrSignature"
  | "MalformedCertificate"
  | "MalformedPrivateKey"
  | "UnsupportedKey"
  | "UnsupportedAlgorithm"
  | "KeyMismatch"
  | "InvalidSpiffeId"
  | "InvalidDnsName"
  | "InvalidIpAddress"
  | "InvalidCommonName"
  | "InvalidValidity"
  | "MissingSubjectAltName"
  | "SignerNotCa"
  | "SignerPathLenExceeded"
  | "SignerExpired";

export class PkiError extends Error {
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string) {
    super(message);
    this.name = "PkiError";
    this.code = code;
  }
}
