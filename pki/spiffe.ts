// SPIFFE IDs (spiffe://<trust-domain>/<path>), the identity a workload certificate carries in its
// URI SAN. Validation follows the SPIFFE ID specification; Trellis paths are ns/<namespace>/sa/<sa>.

import { PkiError } from "./errors.ts";

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_SPIFFE_ID_BYTES = 2048;

function invalid(message: string): never {
  throw new PkiError("InvalidSpiffeId", message);
}

function checkTrustDomain(trustDomain: string): void {
  if (trustDomain.length === 0 || trustDomain.length > 255 || !TRUST_DOMAIN.test(trustDomain)) {
    invalid(`trust domain "${trustDomain}" must be 1–255 characters of a-z, 0-9, ".", "-" or "_"`);
  }
}

/** The whole grammar in one expression, for the common case; dot segments are checked after it. */
const SPIFFE_ID = /^spiffe:\/\/[a-z0-9._-]{1,255}(?:\/[A-Za-z0-9._-]+)+$/;
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

/** Whether `id` is a SPIFFE ID with a non-empty path (a workload identity). */
export function isSpiffeId(id: string): boolean {
  return id.length <= MAX_SPIFFE_ID_BYTES && SPIFFE_ID.test(id) && !DOT_SEGMENT.test(id);
}

/** Throws InvalidSpiffeId, naming the rule it breaks, unless `isSpiffeId(id)`. */
export function validateSpiffeId(id: string): void {
  if (isSpiffeId(id)) return;
  explainInvalidSpiffeId(id);
  invalid(`"${id}" is not a valid SPIFFE ID`);
}

/** Throws with the specific rule `id` breaks. */
function explainInvalidSpiffeId(id: string): void {
  if (Buffer.byteLength(id) > MAX_SPIFFE_ID_BYTES)
    invalid(`SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
  if (!id.startsWith("spiffe://")) invalid(`"${id}" does not start with spiffe://`);
  const rest = id.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  if (slash < 0) invalid(`"${id}" names a trust domain, not a workload: it has no path`);
  checkTrustDomain(rest.slice(0, slash));
  for (const segment of rest.slice(slash + 1).split("/")) {
    if (segment === "" || segment === "." || segment === ".." || !PATH_SEGMENT.test(segment)) {
      invalid(`"${id}" has an empty, dot or non [A-Za-z0-9._-] path segment`);
    }
  }
}

/** The workload identity of a Kubernetes ServiceAccount: spiffe://<td>/ns/<namespace>/sa/<sa>. */
export function spiffeIdFor(trustDomain: string, namespace: string, serviceAccount: string): string {
  checkTrustDomain(trustDomain);
  if (!DNS_LABEL.test(namespace)) invalid(`namespace "${namespace}" is not a DNS-1123 label`);
  const saValid =
    serviceAccount.length <= 253 && serviceAccount.split(".").every((label) => DNS_LABEL.test(label));
  if (!saValid) invalid(`service account "${serviceAccount}" is not a DNS-1123 subdomain`);
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}
