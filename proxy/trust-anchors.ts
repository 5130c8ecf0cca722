/**
 * Which blocks of a trust bundle file are usable trust anchors. Every block must be a PEM
 * `CERTIFICATE` whose body decodes, that both pki/ and OpenSSL parse as an X.509 certificate,
 * and that is a CA; anything else is dropped with the reason, so one bad block (a truncated
 * copy, a leaf pasted by mistake, a body that is not a certificate) cannot take the whole mesh
 * down, and the anchors are counted as what they are. Pure: no I/O, no clock.
 *
 * Owns: the per-block decision and its reasons. Does not read files, keep the last good bundle
 * or log (trust-bundle.ts).
 */
import { X509Certificate } from "node:crypto";
import { fingerprint, parseCertificate, pemBlocks } from "../pki/index.ts";

export interface Anchor {
  der: Buffer;
  fingerprint: string;
  subject: string;
  notAfter: Date;
}

export interface RejectedBlock {
  /** 1-based position of the block in the file. */
  block: number;
  reason: string;
}

export interface ParsedBundle {
  anchors: Anchor[];
  rejected: RejectedBlock[];
}

const beginPattern = /-----BEGIN ([^-\r\n]*)-----/g;
const endPattern = /-----END ([^-\r\n]*)-----/g;

/** Each BEGIN line with the text up to its END line (or the reason there is none). */
function* splitBlocks(text: string): Generator<{ label: string; text: string } | { error: string }> {
  const begins = [...text.matchAll(beginPattern)];
  for (const [i, begin] of begins.entries()) {
    const from = begin.index ?? 0;
    const next = begins[i + 1]?.index ?? text.length;
    endPattern.lastIndex = from;
    const end = endPattern.exec(text);
    if (!end || end.index >= next) {
      yield { error: "a BEGIN line without its END line" };
      continue;
    }
    const label = begin[1] ?? "";
    if (end[1] !== label) yield { error: `BEGIN ${label} is closed by END ${end[1]}` };
    else yield { label, text: text.slice(from, end.index + end[0].length) };
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One block's anchor, or the reason it is not one. */
function checkBlock(text: string, label: string): Anchor | string {
  if (label !== "CERTIFICATE") return `a "${label}" block, not a CERTIFICATE`;
  let der: Buffer;
  try {
    const blocks = pemBlocks(text, "CERTIFICATE");
    if (blocks.length !== 1) return "not one well-formed PEM block";
    der = blocks[0]!;
  } catch (err) {
    return `malformed PEM: ${message(err)}`;
  }
  let info: ReturnType<typeof parseCertificate>;
  try {
    info = parseCertificate(der);
  } catch (err) {
    return `not an X.509 certificate: ${message(err)}`;
  }
  let openssl: X509Certificate;
  try {
    openssl = new X509Certificate(der);
  } catch (err) {
    return `OpenSSL cannot read it: ${message(err)}`;
  }
  const subject = `CN=${info.subjectCommonName ?? "<empty>"}`;
  if (!info.isCa || !openssl.ca) return `${subject} is not a CA certificate`;
  return { der, fingerprint: fingerprint(der), subject, notAfter: info.notAfter };
}

/** Splits a bundle into usable anchors (in order, without duplicates) and rejected blocks. */
export function parseTrustBundle(text: string): ParsedBundle {
  const anchors: Anchor[] = [];
  const rejected: RejectedBlock[] = [];
  const seen = new Set<string>();
  let block = 0;
  for (const found of splitBlocks(text)) {
    block++;
    const result = "error" in found ? found.error : checkBlock(found.text, found.label);
    if (typeof result === "string") rejected.push({ block, reason: result });
    else if (!seen.has(result.fingerprint)) {
      seen.add(result.fingerprint);
      anchors.push(result);
    }
  }
  return { anchors, rejected };
}
