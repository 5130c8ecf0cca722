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

/**
 * Every PEM block in `pem`, in order, decoded to DER; with `label`, only blocks with that label.
 * Text between blocks is ignored (bundles often carry comments); a broken block throws.
 */
export function pemBlocks(pem: string, label?: string): Buffer[] {
  const out: Buffer[] = [];
  let blocksSeen = 0;
  for (const match of pem.matchAll(BLOCK)) {
    blocksSeen++;
    const [, begin, rawBody, end] = match;
    if (begin !== end) {
      throw new PkiError("MalformedPem", `PEM block "BEGIN ${begin}" is closed by "END ${end}"`);
    }
    if (label !== undefined && begin !== label) continue;
    const body = (rawBody ?? "").replace(/\s+/g, "");
    if (body.length % 4 !== 0 || !BASE64_BODY.test(body)) {
      throw new PkiError(
        "MalformedPem",
        `PEM block "${begin}" number ${blocksSeen} has a malformed base64 body`,
      );
    }
    out.push(Buffer.from(body, "base64"));
  }
  const begins = pem.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== blocksSeen) throw new PkiError("MalformedPem", "a PEM block has no matching END line");
  return out;
}
