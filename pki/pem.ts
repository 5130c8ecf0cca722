// PEM armour (RFC 7468): writing one block and reading every block of a bundle. Strict about
// structure (matching BEGIN/END labels, base64 body, no headers) because bundles come from
// Secrets and ConfigMaps that people edit by hand.

import { PkiError } from "./errors.ts";

export type PemLabel = "CERTIFICATE" | "CERTIFICATE REQUEST" | "PRIVATE KEY";

export function toPem(label: PemLabel, der: Buffer): string {
  const body = der.toString("base64");
  let out = `-----BEGIN ${label}-----\n`;
  for (let i = 0; i < body.length; i += 64) out += `${body.slice(i, i + 64)}\n`;
  return `${out}-----END ${label}-----\n`;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

export interface PemBlock {
  label: string;
  der: Buffer;
}

/** Every PEM block in `pem` with its label, in order; a broken block throws MalformedPem. */
export function labelledPemBlocks(pem: string): PemBlock[] {
  const out: PemBlock[] = [];
  for (const match of pem.matchAll(BLOCK)) {
    const [, begin = "", rawBody = "", end] = match;
    if (begin !== end) {
      throw new PkiError("MalformedPem", `PEM block "BEGIN ${begin}" is closed by "END ${end}"`);
    }
    const body = rawBody.replace(/\s+/g, "");
    if (body.length % 4 !== 0 || !BASE64_BODY.test(body)) {
      throw new PkiError(
        "MalformedPem",
        `PEM block "${begin}" number ${out.length + 1} has a malformed base64 body`,
      );
    }
    out.push({ label: begin, der: Buffer.from(body, "base64") });
  }
  let begins = 0;
  for (let at = pem.indexOf("-----BEGIN "); at >= 0; at = pem.indexOf("-----BEGIN ", at + 11)) begins++;
  if (begins !== out.length) throw new PkiError("MalformedPem", "a PEM block has no matching END line");
  return out;
}

/**
 * Every PEM block in `pem`, in order, decoded to DER; with `label`, only blocks with that label.
 * Text between blocks is ignored (bundles often carry comments); a broken block throws.
 */
export function pemBlocks(pem: string, label?: string): Buffer[] {
  const blocks = labelledPemBlocks(pem);
  return (label === undefined ? blocks : blocks.filter((b) => b.label === label)).map((b) => b.der);
}
