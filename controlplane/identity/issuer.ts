// The issuer the identity service signs with, built from the data of the kubernetes.io/tls Secret
// the operator's Certificate controller keeps: tls.crt (the issuer certificate, then its chain),
// tls.key (its P-256 key) and ca.crt (the trust anchors). Checked before use: the key matches the
// certificate, the certificate is a CA, and the chain verifies to an anchor now. Also the
// service's own serving certificate, signed with that same issuer so that proxies verify it
// against the trust bundle they already hold.
// Pure apart from signing. Does not own reading the Secret or when to re-read it (issuer-source.ts).
import { X509Certificate } from "node:crypto";
import {
  fingerprint,
  generateKeyPair,
  issueLeaf,
  parseCertificate,
  pemBlocks,
  privateKeyFromPem,
  privateKeyToPem,
  type Signer,
  toPem,
  verifyChain,
} from "../../pki/index.ts";

export interface Issuer {
  signer: Signer;
  /** The issuer certificate and any intermediates above it, PEM, without the trust anchors. */
  chainPem: string;
  anchorsDer: Buffer[];
  notAfter: Date;
  /** SHA-256 of the issuer certificate's DER: what identifies this issuer in logs and metrics. */
  fingerprint: string;
}

export interface IssuerSecretData {
  "tls.crt"?: string;
  "tls.key"?: string;
  "ca.crt"?: string;
}

/** Decodes a Secret's base64 `data` into the three PEM texts. */
export function issuerSecretData(data: Record<string, string> | undefined): IssuerSecretData {
  const decode = (key: string) =>
    data?.[key] ? Buffer.from(data[key], "base64").toString("utf8") : undefined;
  return { "tls.crt": decode("tls.crt"), "tls.key": decode("tls.key"), "ca.crt": decode("ca.crt") };
}

/** Builds and checks the issuer; throws an Error whose message says what is wrong with the Secret. */
export function issuerFromSecret(data: IssuerSecretData, now: Date = new Date()): Issuer {
  const crt = data["tls.crt"];
  const key = data["tls.key"];
  const ca = data["ca.crt"];
  if (!crt || !key || !ca) throw new Error("the Secret lacks one of tls.crt, tls.key and ca.crt");
  const anchorsDer = pemBlocks(ca, "CERTIFICATE");
  const anchorPrints = new Set(anchorsDer.map(fingerprint));
  // tls.crt may include the anchor at its end; the answer to a proxy never does.
  const chainDer = pemBlocks(crt, "CERTIFICATE").filter((der) => !anchorPrints.has(fingerprint(der)));
  const issuerDer = chainDer[0];
  if (issuerDer === undefined) throw new Error("tls.crt holds no certificate other than the trust anchors");
  if (anchorsDer.length === 0) throw new Error("ca.crt holds no certificate");
  const verified = verifyChain(chainDer, anchorsDer, now);
  if (!verified.ok) throw new Error(`the issuer does not verify against ca.crt: ${verified.reason}`);
  const signer: Signer = { certificateDer: issuerDer, privateKey: privateKeyFromPem(key) };
  // A test issuance checks the key against the certificate and that the certificate may sign.
  const probe = issueLeaf({
    publicKey: generateKeyPair().publicKey,
    signer,
    spiffeId: "spiffe://probe.invalid/identity/probe",
    notAfter: new Date(now.getTime() + 60_000),
  });
  if (!new X509Certificate(probe.der).verify(new X509Certificate(issuerDer).publicKey)) {
    throw new Error("a certificate signed with tls.key does not verify with tls.crt");
  }
  return {
    signer,
    chainPem: chainDer.map((der) => toPem("CERTIFICATE", der)).join(""),
    anchorsDer,
    notAfter: parseCertificate(issuerDer).notAfter,
    fingerprint: fingerprint(issuerDer),
  };
}

export interface ServingNames {
  spiffeId: string;
  dnsNames: string[];
  ipAddresses: string[];
}

/** The service's own TLS names: Service DNS names, its SPIFFE ID, and loopback. */
export function servingNames(trustDomain: string, namespace: string, serviceAccount: string): ServingNames {
  const service = `${serviceAccount}.${namespace}.svc`;
  return {
    spiffeId: `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`,
    dnsNames: [service, `${service}.cluster.local`],
    ipAddresses: ["127.0.0.1"],
  };
}

export interface ServingCredentials {
  cert: string;
  key: string;
  notAfter: Date;
  issuerFingerprint: string;
}

/** A fresh key and a leaf for it (serving leaf + issuer chain), signed by `issuer`. */
export function servingCredentials(
  issuer: Issuer,
  names: ServingNames,
  lifetimeMs: number,
  now: number = Date.now(),
): ServingCredentials {
  const keys = generateKeyPair();
  const leaf = issueLeaf({
    publicKey: keys.publicKey,
    signer: issuer.signer,
    spiffeId: names.spiffeId,
    dnsNames: names.dnsNames,
    ipAddresses: names.ipAddresses,
    notAfter: new Date(now + lifetimeMs),
  });
  return {
    cert: leaf.pem + issuer.chainPem,
    key: privateKeyToPem(keys.privateKey),
    notAfter: leaf.notAfter,
    issuerFingerprint: issuer.fingerprint,
  };
}
