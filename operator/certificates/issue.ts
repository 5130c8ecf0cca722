// Issues the certificate a Certificate describes, as the data of its kubernetes.io/tls Secret:
// tls.crt (the certificate, then its chain up to but excluding the anchor), tls.key, ca.crt
// (the anchor(s) it chains to). Pure apart from key generation and signing.
import type { V1Secret } from "@kubernetes/client-node";
import { type CertificateSpec, parseDuration } from "../../api/index.ts";
import {
  createIssuer,
  createTrustAnchor,
  generateKeyPair,
  type IssuedCertificate,
  issueLeaf,
  pemBlocks,
  privateKeyFromPem,
  privateKeyToPem,
  toPem,
} from "../../pki/index.ts";

export interface IssuedSecretData {
  "tls.crt": string;
  "tls.key": string;
  "ca.crt": string;
  certificate: IssuedCertificate;
}

export interface IssuerMaterial {
  /** PEM chain of the issuer: its certificate first. */
  chainPem: string;
  keyPem: string;
  /** PEM of the anchor(s) the issuer chains to. */
  caPem: string;
}

export function issuerMaterial(secret: V1Secret): IssuerMaterial | undefined {
  const d = secret.data ?? {};
  const get = (k: string) => (d[k] ? Buffer.from(d[k], "base64").toString("utf8") : undefined);
  const chainPem = get("tls.crt");
  const keyPem = get("tls.key");
  const caPem = get("ca.crt");
  if (!chainPem || !keyPem || !caPem) return undefined;
  return { chainPem, keyPem, caPem };
}

export function issueSecretData(
  spec: CertificateSpec,
  issuer: IssuerMaterial | undefined,
  now: Date,
): IssuedSecretData {
  const keyPair = generateKeyPair();
  const notBefore = new Date(now.getTime() - 60_000);
  const notAfter = new Date(now.getTime() + parseDuration(spec.duration));
  const keyPem = privateKeyToPem(keyPair.privateKey);
  if (spec.type === "TrustAnchor") {
    const cert = createTrustAnchor({
      commonName: spec.commonName ?? "trellis-trust-anchor",
      keyPair,
      notBefore,
      notAfter,
    });
    return { "tls.crt": cert.pem, "tls.key": keyPem, "ca.crt": cert.pem, certificate: cert };
  }
  if (!issuer) throw new Error(`a ${spec.type} certificate needs its issuer's key material`);
  const issuerBlocks = pemBlocks(issuer.chainPem, "CERTIFICATE");
  const issuerDer = issuerBlocks[0];
  if (!issuerDer) throw new Error("the issuer's Secret has no certificate");
  const signer = { certificateDer: issuerDer, privateKey: privateKeyFromPem(issuer.keyPem) };
  // The issuer's own chain without its anchor: an anchor's tls.crt is the anchor itself.
  const isAnchor = issuer.caPem.trim() === issuer.chainPem.trim();
  const chain = isAnchor ? "" : issuerBlocks.map((b) => toPem("CERTIFICATE", b)).join("");
  const cert =
    spec.type === "Issuer"
      ? createIssuer({
          commonName: spec.commonName ?? "trellis-identity-issuer",
          publicKey: keyPair.publicKey,
          signer,
          notBefore,
          notAfter,
        })
      : issueLeaf({
          publicKey: keyPair.publicKey,
          signer,
          dnsNames: spec.dnsNames ?? [],
          ipAddresses: spec.ipAddresses ?? [],
          ...(spec.commonName ? { commonName: spec.commonName } : {}),
          notBefore,
          notAfter,
        });
  return { "tls.crt": cert.pem + chain, "tls.key": keyPem, "ca.crt": issuer.caPem, certificate: cert };
}
