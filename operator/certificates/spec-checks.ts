// What the schema cannot say about a Certificate's spec, checked by the operator: each problem
// is one line naming the field, reported as Ready=False with reason InvalidSpec.
import { isIP } from "node:net";
import { type CertificateSpec, parseDuration } from "../../api/index.ts";

const DNS_NAME = /^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;
const MIN_DURATION_MS = 60_000;

export function checkCertificateSpec(spec: CertificateSpec): string[] {
  const problems: string[] = [];
  if (parseDuration(spec.duration) < MIN_DURATION_MS) problems.push("spec.duration: must be at least 1m");
  if (spec.type === "TrustAnchor" && spec.issuerRef) {
    problems.push("spec.issuerRef: a TrustAnchor is self-signed and takes no issuer");
  }
  (spec.dnsNames ?? []).forEach((name, i) => {
    if (!DNS_NAME.test(name)) problems.push(`spec.dnsNames[${i}]: "${name}" is not a DNS name`);
  });
  (spec.ipAddresses ?? []).forEach((ip, i) => {
    if (isIP(ip) === 0) problems.push(`spec.ipAddresses[${i}]: "${ip}" is not an IP address`);
  });
  return problems;
}
