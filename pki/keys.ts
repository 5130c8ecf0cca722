// ECDSA P-256 keys: generation, PKCS#8 PEM in and out, and the SubjectPublicKeyInfo bytes that
// certificates and CSRs embed. Importing a public key is the dearest step on the issuing path
// (OpenSSL 3.0 decodes DER SPKI slowly), so P-256 points go in through JWK, and the SPKI of every
// key this module has seen is remembered per KeyObject to avoid exporting it again.

import { createPrivateKey, createPublicKey, generateKeyPairSync, hash, type KeyObject } from "node:crypto";
import { PkiError, type PkiErrorCode } from "./errors.ts";
import { toPem } from "./pem.ts";

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** SPKI of an uncompressed P-256 point is this fixed 26-byte prefix, then 0x04 ‖ X ‖ Y. */
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");
const P256_SPKI_LENGTH = P256_SPKI_PREFIX.length + 65;

const spkiByKey = new WeakMap<KeyObject, Buffer>();

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicKey };
}

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
}

function spkiFromJwk(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new PkiError("UnsupportedKey", "the key has no P-256 public point");
  }
  const x = Buffer.from(jwk.x, "base64url");
  const y = Buffer.from(jwk.y, "base64url");
  return Buffer.concat([P256_SPKI_PREFIX, Buffer.of(4), x, y]);
}

/** The SubjectPublicKeyInfo DER of a P-256 public key; throws UnsupportedKey for anything else. */
export function p256Spki(publicKey: KeyObject): Buffer {
  const cached = spkiByKey.get(publicKey);
  if (cached !== undefined) return cached;
  if (publicKey.type !== "public" || !isP256(publicKey)) {
    throw new PkiError("UnsupportedKey", "expected an ECDSA P-256 public key");
  }
  const spki = spkiFromJwk(publicKey);
  spkiByKey.set(publicKey, spki);
  return spki;
}

/** The SPKI DER of the public half of a P-256 private key (to match a key against a certificate). */
export function p256SpkiOfPrivate(privateKey: KeyObject): Buffer {
  assertP256PrivateKey(privateKey);
  return spkiFromJwk(createPublicKey(privateKey));
}

/** Throws KeyMismatch unless `privateKey` is the private half of the P-256 SPKI `spki`. */
export function assertKeyMatches(spki: Buffer, privateKey: KeyObject): void {
  if (!p256SpkiOfPrivate(privateKey).equals(spki)) {
    throw new PkiError("KeyMismatch", "the private key does not belong to the public key it is paired with");
  }
}

export function assertP256PrivateKey(privateKey: KeyObject): void {
  if (privateKey.type !== "private" || !isP256(privateKey)) {
    throw new PkiError("UnsupportedKey", "expected an ECDSA P-256 private key");
  }
}

/**
 * Imports a public key from SPKI DER (found inside a CSR or certificate). Uncompressed P-256 points
 * take the JWK route — twice as fast as OpenSSL 3.0's SPKI decoder, and it checks the point is on
 * the curve; anything else goes through the decoder. `code` names the failure for the caller's
 * input (MalformedCsr, MalformedCertificate).
 */
export function importSpki(spki: Buffer, code: PkiErrorCode): KeyObject {
  if (
    spki.length === P256_SPKI_LENGTH &&
    spki.compare(P256_SPKI_PREFIX, 0, 26, 0, 26) === 0 &&
    spki[26] === 4
  ) {
    const x = spki.toString("base64url", 27, 59);
    const y = spki.toString("base64url", 59, 91);
    let key: KeyObject;
    try {
      key = createPublicKey({ key: { kty: "EC", crv: "P-256", x, y }, format: "jwk" });
    } catch {
      throw new PkiError(code, "the public key is not a valid P-256 point");
    }
    spkiByKey.set(key, Buffer.from(spki));
    return key;
  }
  try {
    return createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch {
    throw new PkiError(code, "the SubjectPublicKeyInfo is not a public key OpenSSL can read");
  }
}

/** Like importSpki, but only ECDSA P-256 keys are accepted (the keys Trellis certifies). */
export function importP256Spki(spki: Buffer, code: PkiErrorCode): KeyObject {
  const key = importSpki(spki, code);
  if (!spkiByKey.has(key)) {
    if (!isP256(key)) throw new PkiError("UnsupportedKey", "only ECDSA P-256 public keys are accepted");
    spkiByKey.set(key, spkiFromJwk(key));
  }
  return key;
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits of a canonical P-256 SPKI. */
export function keyIdentifier(p256SpkiDer: Buffer): Buffer {
  return hash("sha1", p256SpkiDer.subarray(26), "buffer");
}

export function privateKeyToPem(key: KeyObject): string {
  if (key.type !== "private") throw new PkiError("UnsupportedKey", "privateKeyToPem needs a private key");
  return toPem("PRIVATE KEY", key.export({ type: "pkcs8", format: "der" }));
}

/** Reads a P-256 private key from PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY") PEM. */
export function privateKeyFromPem(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch {
    throw new PkiError("MalformedPrivateKey", "the PEM does not hold an unencrypted private key");
  }
  assertP256PrivateKey(key);
  return key;
}
