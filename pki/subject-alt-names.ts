// Subject alternative names: validating DNS names and IP addresses, and the GeneralNames encoding
// shared by certificates and CSRs (URI for the SPIFFE ID, dNSName, iPAddress).

import { isIPv4, isIPv6 } from "node:net";
import { DerReader, type Tlv } from "./der-decode.ts";
import { contextPrimitiveTag, putHeader, TAG, tlvSize } from "./der-encode.ts";
import { PkiError, type PkiErrorCode } from "./errors.ts";

const GN_DNS = contextPrimitiveTag(2);
const GN_URI = contextPrimitiveTag(6);
const GN_IP = contextPrimitiveTag(7);

const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export interface AltNames {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
}

/** Host names as TLS checks them; a wildcard is allowed only as the whole first label. */
export function validateDnsName(name: string): void {
  const labels = name.startsWith("*.") ? name.slice(2).split(".") : name.split(".");
  if (name.length > 253 || !labels.every((label) => DNS_LABEL.test(label))) {
    throw new PkiError("InvalidDnsName", `"${name}" is not a valid DNS name`);
  }
}

/** IPv4 or IPv6 text (no zone) to the 4 or 16 network-order bytes an iPAddress SAN holds. */
export function ipToBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split(".").map(Number));
  if (!isIPv6(ip) || ip.includes("%")) throw new PkiError("InvalidIpAddress", `"${ip}" is not an IP address`);
  let text = ip;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".", lastColon)) {
    const v4 = ipToBytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head = "", rest] = text.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((h) => Number.parseInt(h, 16)));
  let groups = parse(head);
  if (rest !== undefined) {
    const back = parse(rest);
    groups = [...groups, ...new Array<number>(8 - groups.length - back.length).fill(0), ...back];
  }
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(g, i * 2);
  return out;
}

/** Bytes of an iPAddress SAN back to text: dotted IPv4, RFC 5952 IPv6 (lowercase, longest zero run as ::). */
export function bytesToIp(bytes: Buffer): string | undefined {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) return undefined;
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** URI and DNS names (validated ASCII, so one byte per character) and iPAddress bytes. */
export interface EncodableNames {
  uris: readonly string[];
  dnsNames: readonly string[];
}

/** Content length of the GeneralNames SEQUENCE for `names` (see writeGeneralNames). */
export function generalNamesLength(names: EncodableNames, ipBytes: readonly Buffer[]): number {
  let length = 0;
  for (const uri of names.uris) length += tlvSize(uri.length);
  for (const dns of names.dnsNames) length += tlvSize(dns.length);
  for (const ip of ipBytes) length += tlvSize(ip.length);
  return length;
}

/**
 * Writes the GeneralNames SEQUENCE (the SubjectAltName extension value) at `offset`, in URI, DNS,
 * IP order; `length` is generalNamesLength's. Returns the end.
 */
export function writeGeneralNames(
  out: Buffer,
  offset: number,
  length: number,
  names: EncodableNames,
  ipBytes: readonly Buffer[],
): number {
  let p = putHeader(out, offset, TAG.sequence, length);
  for (const uri of names.uris) {
    p = putHeader(out, p, GN_URI, uri.length);
    p += out.write(uri, p, "latin1");
  }
  for (const dns of names.dnsNames) {
    p = putHeader(out, p, GN_DNS, dns.length);
    p += out.write(dns, p, "latin1");
  }
  for (const ip of ipBytes) {
    p = putHeader(out, p, GN_IP, ip.length);
    out.set(ip, p);
    p += ip.length;
  }
  return p;
}

function ia5(buf: Buffer, item: Tlv, reader: DerReader): string {
  for (let i = item.valueStart; i < item.end; i++) {
    if ((buf[i] ?? 0) > 0x7e || (buf[i] ?? 0) < 0x20) reader.fail("a name holds a non-printable character");
  }
  return buf.toString("latin1", item.valueStart, item.end);
}

/** Reads GeneralNames at `value` (the SAN extension's OCTET STRING content); other name forms are skipped. */
export function decodeGeneralNames(buf: Buffer, value: Tlv, code: PkiErrorCode): AltNames {
  const outer = new DerReader(buf, code, value.valueStart, value.end);
  const seq = outer.next(TAG.sequence);
  outer.finish();
  const reader: DerReader = DerReader.inside(buf, seq, code);
  const names: AltNames = { uris: [], dnsNames: [], ipAddresses: [] };
  while (!reader.atEnd()) {
    const item = reader.next();
    if (item.tag === GN_URI) names.uris.push(ia5(buf, item, reader));
    else if (item.tag === GN_DNS) names.dnsNames.push(ia5(buf, item, reader));
    else if (item.tag === GN_IP) {
      const ip = bytesToIp(buf.subarray(item.valueStart, item.end));
      if (ip === undefined) reader.fail("an iPAddress name is neither 4 nor 16 bytes");
      names.ipAddresses.push(ip);
    }
  }
  return names;
}
