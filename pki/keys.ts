// ECDSA P-256 keys: generation, PKCS#8 PEM in and out, and the SubjectPublicKeyInfo bytes that
// certificates and CSRs embed. Importing a public key is the dearest step on the issuing path
// (OpenSSL 3.0 decodes DER SPKI slowly), so P-256 points go in through JWK, and the SPKI of every
// key this module has seen is remembered per KeyObject to avoid exporting it again.
//
// Node 20 can deadlock on a key fresh from generateKeyPairSync: `asymmetricKeyDetails` and JWK
// export hold the key's mutex while allocating on the V8 heap, and if that allocation runs the
// garbage collector, the finished key-generation job is destroyed and takes the same mutex
// (seen as a hung process in the pki benchmark). So this module never calls either on a key it
// did not import itself: generated keys come with their SPKI, and other keys are inspected
// through the DER encoder, which takes no lock.

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

/** P-256 public or private key → the SPKI DER of its public point, for keys already checked. */
const spkiByKey = new WeakMap<KeyObject, Buffer>();

export function isUncompressedP256Spki(spki: Buffer): boolean {
  return (
    spki.length === P256_SPKI_LENGTH &&
    spki.compare(P256_SPKI_PREFIX, 0, P256_SPKI_PREFIX.length, 0, P256_SPKI_PREFIX.length) === 0 &&
    spki[P256_SPKI_PREFIX.length] === 4
  );
}

function spkiFromCoordinates(x: string, y: string): Buffer {
  const point = Buffer.concat([Buffer.of(4), Buffer.from(x, "base64url"), Buffer.from(y, "base64url")]);
  if (point.length !== 65) throw new PkiError("UnsupportedKey", "the key has no P-256 public point");
  return Buffer.concat([P256_SPKI_PREFIX, point]);
}

interface GeneratedWithJwkPublicKey {
  publicKey: { x?: unknown; y?: unknown };
  privateKey: KeyObject;
}

/** generateKeyPairSync with only the public half encoded (as JWK, inside the job): @types/node has no overload for it. */
const generateWithJwkPublicKey = generateKeyPairSync as unknown as (
  type: "ec",
  options: { namedCurve: "P-256"; publicKeyEncoding: { format: "jwk" } },
) => GeneratedWithJwkPublicKey;

export function generateKeyPair(): KeyPair {
  const generated = generateWithJwkPublicKey("ec", {
    namedCurve: "P-256",
    publicKeyEncoding: { format: "jwk" },
  });
  const { x, y } = generated.publicKey;
  if (typeof x !== "string" || typeof y !== "string") {
    throw new PkiError("UnsupportedKey", "key generation returned no P-256 public point");
  }
  const privateKey = generated.privateKey;
  const publicKey = createPublicKey(privateKey);
  const spki = spkiFromCoordinates(x, y);
  spkiByKey.set(privateKey, spki);
  spkiByKey.set(publicKey, spki);
  return { privateKey, publicKey };
}

/** The P-256 SPKI of a key this module has not seen, through the DER encoder (see the header). */
function inspect(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== "ec") throw new PkiError("UnsupportedKey", "expected an ECDSA P-256 key");
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const spki = publicKey.export({ type: "spki", format: "der" });
  if (!isUncompressedP256Spki(spki)) throw new PkiError("UnsupportedKey", "expected an ECDSA P-256 key");
  spkiByKey.set(key, spki);
  return spki;
}

/** The SubjectPublicKeyInfo DER of a P-256 public key; throws UnsupportedKey for anything else. */
export function p256Spki(publicKey: KeyObject): Buffer {
  if (publicKey.type !== "public") throw new PkiError("UnsupportedKey", "expected an ECDSA P-256 public key");
  return spkiByKey.get(publicKey) ?? inspect(publicKey);
}

/** The SPKI DER of the public half of a P-256 private key (to match a key against a certificate). */
export function p256SpkiOfPrivate(privateKey: KeyObject): Buffer {
  if (privateKey.type !== "private")
    throw new PkiError("UnsupportedKey", "expected an ECDSA P-256 private key");
  return spkiByKey.get(privateKey) ?? inspect(privateKey);
}

/** Throws KeyMismatch unless `privateKey` is the private half of the P-256 SPKI `spki`. */
export function assertKeyMatches(spki: Buffer, privateKey: KeyObject): void {
  if (!p256SpkiOfPrivate(privateKey).equals(spki)) {
    throw new PkiError("KeyMismatch", "the private key does not belong to the public key it is paired with");
  }
}

export function assertP256PrivateKey(privateKey: KeyObject): void {
  p256SpkiOfPrivate(privateKey);
}

/**
 * Imports a public key from SPKI DER (found inside a CSR or certificate). Uncompressed P-256 points
 * take the JWK route — twice as fast as OpenSSL 3.0's SPKI decoder, and it checks the point is on
 * the curve; anything else goes through the decoder. `code` names the failure for the caller's
 * input (MalformedCsr, MalformedCertificate).
 */
export function importSpki(spki: Buffer, code: PkiErrorCode): KeyObject {
  if (isUncompressedP256Spki(spki)) {
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

/**
 * Like importSpki, but only ECDSA P-256 keys are accepted (the keys Trellis certifies). A
 * compressed point is re-encoded uncompressed; the JWK export that takes is safe here because
 * the key was made by createPublicKey, not by a key-generation job.
 */
export function importP256Spki(spki: Buffer, code: PkiErrorCode): KeyObject {
  const key = importSpki(spki, code);
  if (spkiByKey.has(key)) return key;
  const jwk = key.asymmetricKeyType === "ec" ? key.export({ format: "jwk" }) : {};
  if (jwk.crv !== "P-256" || typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new PkiError("UnsupportedKey", "only ECDSA P-256 public keys are accepted");
  }
  spkiByKey.set(key, spkiFromCoordinates(jwk.x, jwk.y));
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
