/**
 * Test fixture: a mesh certificate authority (trust anchor + intermediate issuer) built with
 * pki/, and leaf issuance for test servers. Every certificate in the proxy tests comes from here.
 */
import type { KeyObject } from "node:crypto";
import {
  createIssuer,
  createTrustAnchor,
  generateKeyPair,
  type IssuedCertificate,
  issueLeaf,
  parseCertificate,
  pemBlocks,
  privateKeyFromPem,
  privateKeyToPem,
  type Signer,
} from "../../pki/index.ts";

export interface MeshCa {
  anchor: IssuedCertificate;
  issuer: IssuedCertificate;
  signer: Signer;
}

const day = 86_400_000;

export function createMeshCa(name: string): MeshCa {
  const anchorKeys = generateKeyPair();
  const notAfter = new Date(Date.now() + 30 * day);
  const anchor = createTrustAnchor({ commonName: `${name} root`, keyPair: anchorKeys, notAfter });
  const issuerKeys = generateKeyPair();
  const issuer = createIssuer({
    commonName: `${name} issuer`,
    publicKey: issuerKeys.publicKey,
    signer: { certificateDer: anchor.der, privateKey: anchorKeys.privateKey },
    notAfter,
  });
  return { anchor, issuer, signer: { certificateDer: issuer.der, privateKey: issuerKeys.privateKey } };
}

export function issueFor(
  ca: MeshCa,
  publicKey: KeyObject,
  o: { spiffeId?: string; ipAddresses?: string[]; lifetimeMs: number },
): string {
  const leaf = issueLeaf({
    publicKey,
    signer: ca.signer,
    spiffeId: o.spiffeId,
    ipAddresses: o.ipAddresses,
    notBefore: new Date(Date.now() - 2000),
    notAfter: new Date(Date.now() + o.lifetimeMs),
  });
  return leaf.pem + ca.issuer.pem;
}

/** A key and chain for a TLS test server at 127.0.0.1. */
export function serverCredentials(ca: MeshCa, spiffeId?: string): { key: string; cert: string } {
  const keys = generateKeyPair();
  return {
    key: privateKeyToPem(keys.privateKey),
    cert: issueFor(ca, keys.publicKey, { spiffeId, ipAddresses: ["127.0.0.1"], lifetimeMs: day }),
  };
}

/** The CA as JSON (PEMs and the issuer's key), for a control-plane fake in a child process. */
export function exportMeshCa(ca: MeshCa): string {
  return JSON.stringify({
    anchor: ca.anchor.pem,
    issuer: ca.issuer.pem,
    issuerKey: privateKeyToPem(ca.signer.privateKey),
  });
}

function issuedFromPem(pem: string): IssuedCertificate {
  const der = pemBlocks(pem, "CERTIFICATE")[0]!;
  const info = parseCertificate(der);
  return {
    der,
    pem,
    notBefore: info.notBefore,
    notAfter: info.notAfter,
    fingerprint: info.fingerprint,
    serialHex: info.serialHex,
  };
}

export function importMeshCa(json: string): MeshCa {
  const o = JSON.parse(json) as { anchor: string; issuer: string; issuerKey: string };
  const issuer = issuedFromPem(o.issuer);
  return {
    anchor: issuedFromPem(o.anchor),
    issuer,
    signer: { certificateDer: issuer.der, privateKey: privateKeyFromPem(o.issuerKey) },
  };
}
