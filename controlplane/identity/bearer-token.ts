// The bearer token before its TokenReview: taken from the Authorization header, and its JWT claims
// read WITHOUT verifying the signature. The claims are only ever used to refuse early (wrong
// audience, expired, not a bound token) or to bound how long a TokenReview result is cached
// (`exp`); never to accept. The TokenReview by the API server is the verification.
// Owns header and claim parsing; does not own the TokenReview or its cache (token-review.ts).
import { CertifyError } from "./certify-errors.ts";

/** A projected ServiceAccount token is about 1 KiB; anything far larger is not one. */
export const MAX_TOKEN_BYTES = 8192;

export interface TokenClaims {
  /** `exp`, in milliseconds since the epoch. */
  expiresAt: number;
  audiences: string[];
}

export function bearerToken(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value === "") {
    throw new CertifyError(
      "MissingToken",
      "send the ServiceAccount token as `authorization: Bearer <token>`",
    );
  }
  if (!/^bearer /i.test(value)) {
    throw new CertifyError("MissingToken", "the authorization header is not a Bearer token");
  }
  const token = value.slice(7).trim();
  if (token === "") throw new CertifyError("MissingToken", "the Bearer token is empty");
  if (token.length > MAX_TOKEN_BYTES) {
    throw new CertifyError("InvalidToken", `the token is longer than ${MAX_TOKEN_BYTES} bytes`);
  }
  return token;
}

function notBound(reason: string): CertifyError {
  return new CertifyError("InvalidToken", `the token is not a projected ServiceAccount token: ${reason}`);
}

/** Reads `exp` and `aud` from a JWT's payload; throws InvalidToken when they are not there. */
export function readClaims(token: string): TokenClaims {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) throw notBound("it is not a JWT");
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
  } catch {
    throw notBound("its payload is not JSON");
  }
  if (typeof payload !== "object" || payload === null) throw notBound("its payload is not an object");
  const { exp, aud } = payload as { exp?: unknown; aud?: unknown };
  if (typeof exp !== "number" || !Number.isFinite(exp)) throw notBound("it has no expiry (exp)");
  const audiences =
    typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud.filter((a) => typeof a === "string") : [];
  return { expiresAt: exp * 1000, audiences };
}

/** Refuses, without asking the API server, a token that is expired or meant for another audience. */
export function checkClaims(claims: TokenClaims, audience: string, now: number): void {
  if (!claims.audiences.includes(audience)) {
    const got = claims.audiences.length === 0 ? "no audience" : claims.audiences.join(", ");
    throw new CertifyError(
      "WrongAudience",
      `the token is for ${got}; the identity service accepts only tokens for the audience ${audience}`,
    );
  }
  if (claims.expiresAt <= now) {
    throw new CertifyError(
      "TokenExpired",
      `the token expired at ${new Date(claims.expiresAt).toISOString()}`,
    );
  }
}
