// The public, read-only view of a certificate (parseCertificate) and its SHA-256 fingerprint.

import { hash, type KeyObject } from "node:crypto";
import { decodeCertificate, serialToHex } from "./certificate-decode.ts";
import { importSpki } from "./keys.ts";
import { isSpiffeId } from "./spiffe.ts";
import { KEY_USAGE } from "./x509-extensions.ts";

export interface CertificateInfo {
  subjectCommonName?: string;
  issuerCommonName?: string;
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  pathLen?: number;
  spiffeId?: string;
  dnsNames: string[];
  ipAddresses: string[];
  fingerprint: string;
  serialHex: string;
  publicKey: KeyObject;
  subjectKeyIdHex?: string;
  authorityKeyIdHex?: string;
}

/** Lowercase hex SHA-256 of the DER, the form `openssl x509 -fingerprint -sha256` prints without colons. */
export function fingerprint(der: Buffer): string {
  return hash("sha256", der, "hex");
}

/** Decodes a DER certificate; throws PkiError("MalformedCertificate") when it is not one. */
export function parseCertificate(der: Buffer): CertificateInfo {
  const cert = decodeCertificate(der);
  const ext = cert.extensions;
  const info: CertificateInfo = {
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    isCa: ext.isCa,
    dnsNames: ext.altNames.dnsNames,
    ipAddresses: ext.altNames.ipAddresses,
    fingerprint: fingerprint(der),
    serialHex: serialToHex(cert.serial),
    publicKey: importSpki(cert.spki, "MalformedCertificate"),
  };
  if (cert.subjectCommonName !== undefined) info.subjectCommonName = cert.subjectCommonName;
  if (cert.issuerCommonName !== undefined) info.issuerCommonName = cert.issuerCommonName;
  if (ext.pathLen !== undefined) info.pathLen = ext.pathLen;
  const spiffeId = ext.altNames.uris.find((uri) => uri.startsWith("spiffe://"));
  if (spiffeId !== undefined) info.spiffeId = spiffeId;
  if (ext.subjectKeyId !== undefined) info.subjectKeyIdHex = ext.subjectKeyId.toString("hex");
  if (ext.authorityKeyId !== undefined) info.authorityKeyIdHex = ext.authorityKeyId.toString("hex");
  return info;
}

const caKeyUsage = (1 << KEY_USAGE.keyCertSign) | (1 << KEY_USAGE.cRLSign);

/**
 * The SPIFFE ID of a certificate a validator may accept as an X.509-SVID leaf, else undefined
 * (SPIFFE X509-SVID §2, §5.2): exactly one URI SAN ("validators encountering an SVID containing
 * more than one URI SAN MUST reject the SVID"), and it a valid workload SPIFFE ID (no dot
 * segments, query, percent-encoding or characters outside the SPIFFE ID grammar, spiffe.ts);
 * not a CA; no keyCertSign or cRLSign. Throws PkiError("MalformedCertificate") when the DER is
 * not a certificate. Chain verification is the caller's (OpenSSL, verifyChain).
 */
export function leafSpiffeId(der: Buffer): string | undefined {
  const ext = decodeCertificate(der).extensions;
  const uri = ext.altNames.uris.length === 1 ? ext.altNames.uris[0]! : undefined;
  if (uri === undefined || ext.isCa || ((ext.keyUsage ?? 0) & caKeyUsage) !== 0) return undefined;
  return isSpiffeId(uri) ? uri : undefined;
}
