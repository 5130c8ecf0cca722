// Test support: a trust anchor → issuer → leaf hierarchy built with the public pki API, shared by
// the pki tests. Not imported by the module itself.

import {
  createIssuer,
  createTrustAnchor,
  generateKeyPair,
  type IssuedCertificate,
  type KeyPair,
  type Signer,
} from "../index.ts";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export function fromNow(ms: number): Date {
  return new Date(Date.now() + ms);
}

export interface Authority {
  keys: KeyPair;
  certificate: IssuedCertificate;
  signer: Signer;
}

export function trustAnchor(commonName: string, o: { notBefore?: Date; notAfter?: Date } = {}): Authority {
  const keys = generateKeyPair();
  const certificate = createTrustAnchor({
    commonName,
    keyPair: keys,
    notAfter: o.notAfter ?? fromNow(365 * DAY),
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
  });
  return { keys, certificate, signer: { certificateDer: certificate.der, privateKey: keys.privateKey } };
}

export function issuer(
  commonName: string,
  parent: Authority,
  o: { notBefore?: Date; notAfter?: Date } = {},
): Authority {
  const keys = generateKeyPair();
  const certificate = createIssuer({
    commonName,
    publicKey: keys.publicKey,
    signer: parent.signer,
    notAfter: o.notAfter ?? fromNow(30 * DAY),
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
  });
  return { keys, certificate, signer: { certificateDer: certificate.der, privateKey: keys.privateKey } };
}
