// Whether a Certificate needs (re-)issuing, and why: a pure function of the Certificate, its
// Secret and its issuer's Secret, in the manner of cert-manager's policy checks. Each reason is
// a CamelCase word that goes into the condition and the Event.
import { createHash } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import { type CertificateSpec, parseDuration } from "../../api/index.ts";
import { fingerprint, pemBlocks } from "../../pki/index.ts";

export const SECRET_ANNOTATIONS = {
  specHash: "trellis.dev/certificate-spec-hash",
  issuerFingerprint: "trellis.dev/issuer-fingerprint",
  certificateName: "trellis.dev/certificate-name",
  revision: "trellis.dev/certificate-revision",
} as const;

export type IssuanceDecision =
  | {
      issue: true;
      reason: "SecretMissing" | "SecretInvalid" | "SpecChanged" | "IssuerChanged" | "Expiring";
      message: string;
    }
  | { issue: false; renewalTime: Date };

/** A hash of the parts of the spec that shape the certificate (not the secret name). */
export function specHash(spec: CertificateSpec): string {
  const shaped = {
    type: spec.type,
    commonName: spec.commonName,
    duration: spec.duration,
    // A Secret issuer is named with its kind; a Certificate issuer as before (hashes stay stable).
    issuerRef: spec.issuerRef?.kind === "Secret" ? `Secret/${spec.issuerRef.name}` : spec.issuerRef?.name,
    dnsNames: spec.dnsNames ?? [],
    ipAddresses: spec.ipAddresses ?? [],
  };
  return createHash("sha256").update(JSON.stringify(shaped)).digest("hex").slice(0, 16);
}

/** When to renew: renewBefore ahead of notAfter, or a third of the lifetime by default. */
export function renewalTime(spec: CertificateSpec, notBefore: Date, notAfter: Date): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const before = spec.renewBefore ? parseDuration(spec.renewBefore) : lifetime / 3;
  return new Date(notAfter.getTime() - Math.min(before, lifetime));
}

export function certificateOf(secret: V1Secret): Buffer | undefined {
  const pem = secret.data?.["tls.crt"];
  if (!pem) return undefined;
  return pemBlocks(Buffer.from(pem, "base64").toString("utf8"), "CERTIFICATE")[0];
}

export function decideIssuance(input: {
  spec: CertificateSpec;
  secret: V1Secret | undefined;
  issuerSecret: V1Secret | undefined;
  parse: (der: Buffer) => { notBefore: Date; notAfter: Date };
  now: Date;
}): IssuanceDecision {
  const { spec, secret, now } = input;
  if (!secret)
    return { issue: true, reason: "SecretMissing", message: `Secret ${spec.secretName} does not exist` };
  const der = certificateOf(secret);
  let info: { notBefore: Date; notAfter: Date } | undefined;
  try {
    info = der ? input.parse(der) : undefined;
  } catch {
    info = undefined;
  }
  if (!info || !secret.data?.["tls.key"]) {
    return {
      issue: true,
      reason: "SecretInvalid",
      message: `Secret ${spec.secretName} holds no valid certificate and key`,
    };
  }
  const annotations = secret.metadata?.annotations ?? {};
  if (annotations[SECRET_ANNOTATIONS.specHash] !== specHash(spec)) {
    return {
      issue: true,
      reason: "SpecChanged",
      message: "the spec changed since the certificate was issued",
    };
  }
  if (input.issuerSecret) {
    const issuerDer = certificateOf(input.issuerSecret);
    const current = issuerDer ? fingerprint(issuerDer) : undefined;
    if (current && annotations[SECRET_ANNOTATIONS.issuerFingerprint] !== current) {
      return { issue: true, reason: "IssuerChanged", message: "the issuer has a new certificate" };
    }
  }
  const renewal = renewalTime(spec, info.notBefore, info.notAfter);
  if (now.getTime() >= renewal.getTime()) {
    return { issue: true, reason: "Expiring", message: `renewal time ${renewal.toISOString()} reached` };
  }
  return { issue: false, renewalTime: renewal };
}
