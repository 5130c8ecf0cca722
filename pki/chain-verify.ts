// Chain verification against a bundle of trust anchors: names chain (RFC 5280 §7.1 matching), every signature
// verifies, every certificate is inside its validity window (anchors included), every signer is a
// CA allowed to sign certificates within its pathLen, and no certificate carries a critical
// extension this module does not understand. Revocation and EKU policy are out of scope.
// A failure's reason starts with a CamelCase code ("Expired: ..."), usable as a condition reason.

import { type KeyObject, verify } from "node:crypto";
import { type DecodedCertificate, decodeCertificate } from "./certificate-decode.ts";
import { fingerprint } from "./certificate-info.ts";
import { PkiError } from "./errors.ts";
import { importSpki } from "./keys.ts";
import { KEY_USAGE } from "./x509-extensions.ts";
import { namesMatch } from "./x509-name.ts";

export type ChainResult =
  | { ok: true; anchorFingerprint: string; spiffeId?: string }
  | { ok: false; reason: string };

/** Issuer keys repeat (a few anchors, one issuer), so imported CA keys are kept, up to a bound. */
const caKeys = new Map<string, KeyObject>();
const CA_KEY_CACHE_SIZE = 256;

function caKey(cert: DecodedCertificate): KeyObject {
  const id = cert.spki.toString("base64");
  let key = caKeys.get(id);
  if (key === undefined) {
    key = importSpki(cert.spki, "MalformedCertificate");
    if (caKeys.size >= CA_KEY_CACHE_SIZE) caKeys.delete(caKeys.keys().next().value ?? "");
    caKeys.set(id, key);
  }
  return key;
}

function describe(cert: DecodedCertificate, role: string): string {
  return `${role} (CN=${cert.subjectCommonName ?? "<empty>"})`;
}

function checkOwn(cert: DecodedCertificate, role: string, at: Date): string | undefined {
  if (at.getTime() < cert.notBefore.getTime()) {
    return `NotYetValid: ${describe(cert, role)} is not valid before ${cert.notBefore.toISOString()}`;
  }
  if (at.getTime() > cert.notAfter.getTime()) {
    return `Expired: ${describe(cert, role)} expired at ${cert.notAfter.toISOString()}`;
  }
  if (cert.extensions.unhandledCritical > 0) {
    return `UnhandledCriticalExtension: ${describe(cert, role)} has a critical extension this verifier does not know`;
  }
  return undefined;
}

/** `cas` is how many CA certificates sit between `signer` and the leaf (pathLen counts those). */
function checkSigner(signer: DecodedCertificate, role: string, cas: number): string | undefined {
  const ext = signer.extensions;
  if (!ext.isCa) return `NotCa: ${describe(signer, role)} is not a CA but signed another certificate`;
  if (ext.keyUsage !== undefined && (ext.keyUsage & (1 << KEY_USAGE.keyCertSign)) === 0) {
    return `NotCa: ${describe(signer, role)} lacks the keyCertSign key usage`;
  }
  if (ext.pathLen !== undefined && cas > ext.pathLen) {
    return `PathLenExceeded: ${describe(signer, role)} allows ${ext.pathLen} CA certificate(s) below it, the chain has ${cas}`;
  }
  return undefined;
}

function checkSignature(
  child: DecodedCertificate,
  parent: DecodedCertificate,
  role: string,
): string | undefined {
  if (!namesMatch(child.issuerName, parent.subjectName)) {
    return `IssuerMismatch: ${describe(child, role)} names an issuer other than the next certificate`;
  }
  const algorithm = child.signatureAlgorithm;
  if (algorithm === undefined)
    return `UnsupportedAlgorithm: ${describe(child, role)} uses an unknown signature algorithm`;
  let valid = false;
  try {
    valid = verify(algorithm.hash, child.tbs, caKey(parent), child.signature);
  } catch {
    valid = false;
  }
  return valid ? undefined : `BadSignature: the signature on ${describe(child, role)} does not verify`;
}

function decodeAll(ders: Buffer[], role: string): DecodedCertificate[] | string {
  const out: DecodedCertificate[] = [];
  for (const [index, der] of ders.entries()) {
    try {
      out.push(decodeCertificate(der));
    } catch (error) {
      if (!(error instanceof PkiError)) throw error;
      return `MalformedCertificate: ${role} ${index} cannot be decoded (${error.message})`;
    }
  }
  return out;
}

function roleOf(index: number): string {
  return index === 0 ? "leaf" : `intermediate ${index}`;
}

function verifyToAnchor(
  last: DecodedCertificate,
  cas: number,
  anchors: DecodedCertificate[],
  at: Date,
): ChainResult {
  const aki = last.extensions.authorityKeyId;
  const candidates = anchors.filter((anchor) => {
    const ski = anchor.extensions.subjectKeyId;
    return (
      namesMatch(anchor.subjectName, last.issuerName) &&
      (aki === undefined || ski === undefined || aki.equals(ski))
    );
  });
  let reason = `UnknownAuthority: no trust anchor in the bundle issued ${describe(last, "the top of the chain")}`;
  for (const anchor of candidates) {
    const failure =
      checkOwn(anchor, "trust anchor", at) ??
      checkSigner(anchor, "trust anchor", cas) ??
      checkSignature(last, anchor, "the top of the chain");
    if (failure === undefined) return { ok: true, anchorFingerprint: fingerprint(anchor.der) };
    reason = failure;
  }
  return { ok: false, reason };
}

/** Verifies `chainDer` (leaf first, then intermediates) up to one of `anchorsDer` at time `at`. */
export function verifyChain(chainDer: Buffer[], anchorsDer: Buffer[], at: Date = new Date()): ChainResult {
  if (chainDer.length === 0) return { ok: false, reason: "NoCertificates: the chain is empty" };
  if (anchorsDer.length === 0) return { ok: false, reason: "NoAnchors: the trust bundle is empty" };
  const chain = decodeAll(chainDer, "chain certificate");
  if (typeof chain === "string") return { ok: false, reason: chain };
  const anchors = decodeAll(anchorsDer, "trust anchor");
  if (typeof anchors === "string") return { ok: false, reason: anchors };
  const top = chain[chain.length - 1];
  if (chain.length > 1 && top !== undefined && anchors.some((anchor) => anchor.der.equals(top.der)))
    chain.pop();

  for (const [index, cert] of chain.entries()) {
    const failure =
      checkOwn(cert, roleOf(index), at) ??
      (index > 0 ? checkSigner(cert, roleOf(index), index - 1) : undefined) ??
      (index > 0 ? checkSignature(chain[index - 1] ?? cert, cert, roleOf(index - 1)) : undefined);
    if (failure !== undefined) return { ok: false, reason: failure };
  }
  const last = chain[chain.length - 1] ?? top;
  if (last === undefined) return { ok: false, reason: "NoCertificates: the chain is empty" };
  const result = verifyToAnchor(last, chain.length - 1, anchors, at);
  const spiffeId = chain[0]?.extensions.altNames.uris.find((uri) => uri.startsWith("spiffe://"));
  return result.ok && spiffeId !== undefined ? { ...result, spiffeId } : result;
}
