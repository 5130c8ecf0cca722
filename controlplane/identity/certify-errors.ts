// Every way the identity service refuses a request (certify and report alike): a stable CamelCase code (what the proxy logs,
// what /metrics counts, what a person searches for), the HTTP status it maps to, and a message a
// person can act on. Messages never carry the token, the CSR or any key material.
// Owns the codes and their statuses; does not decide when each applies.

export type CertifyErrorCode =
  // 400: the request itself is wrong
  | "MalformedCsr"
  | "BadCsrSignature"
  | "UnsupportedAlgorithm"
  | "UnsupportedKey"
  | "InvalidSpiffeId"
  | "InvalidReport"
  // 401: the caller is not authenticated
  | "MissingToken"
  | "InvalidToken"
  | "WrongAudience"
  | "TokenExpired"
  // 403: authenticated, but not allowed this
  | "NotServiceAccount"
  | "IdentityMismatch"
  | "NotBoundToPod"
  // the pod a report is about
  | "PodNotFound"
  | "PodReplaced"
  // transport
  | "NotFound"
  | "MethodNotAllowed"
  | "BodyTooLarge"
  | "UnsupportedMediaType"
  | "RequestTimeout"
  | "TooManyRequests"
  // 503: the service cannot sign right now
  | "NoIssuer"
  | "IssuerExpired"
  | "TokenReviewUnavailable"
  | "PodPatchFailed"
  | "Internal";

const STATUS: Record<CertifyErrorCode, number> = {
  MalformedCsr: 400,
  BadCsrSignature: 400,
  UnsupportedAlgorithm: 400,
  UnsupportedKey: 400,
  InvalidSpiffeId: 400,
  InvalidReport: 400,
  MissingToken: 401,
  InvalidToken: 401,
  WrongAudience: 401,
  TokenExpired: 401,
  NotServiceAccount: 403,
  IdentityMismatch: 403,
  NotBoundToPod: 403,
  PodNotFound: 404,
  PodReplaced: 409,
  NotFound: 404,
  MethodNotAllowed: 405,
  RequestTimeout: 408,
  BodyTooLarge: 413,
  UnsupportedMediaType: 415,
  TooManyRequests: 429,
  NoIssuer: 503,
  IssuerExpired: 503,
  TokenReviewUnavailable: 503,
  PodPatchFailed: 503,
  Internal: 500,
};

export const CERTIFY_ERROR_CODES = Object.keys(STATUS) as CertifyErrorCode[];

export class CertifyError extends Error {
  override readonly name = "CertifyError";
  constructor(
    readonly code: CertifyErrorCode,
    message: string,
  ) {
    super(message);
  }

  get status(): number {
    return STATUS[this.code];
  }

  /** The JSON body of the refusal: `{error, message}`. */
  toJson(): string {
    return JSON.stringify({ error: this.code, message: this.message });
  }
}

/** Any thrown value as a CertifyError; what is not one already is an internal error (never echoed). */
export function asCertifyError(err: unknown): CertifyError {
  if (err instanceof CertifyError) return err;
  return new CertifyError("Internal", "the identity service failed to handle the request; see its log");
}
