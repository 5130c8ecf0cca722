// What transparent capture needs to know about a pod, and the value types it is made of: the
// proxy's ports and UID, the ports and subnets that bypass the proxy, and the parsers of the
// text forms (port lists, CIDRs) that annotations and trellis-init's flags use.
//
// Owns: the proxy's well-known ports and UID (the injector, the image build and the rules read
// them here), port-list and CIDR parsing and formatting. Does not own: where the values come
// from (annotations.ts, init.ts) or the rules themselves (ruleset.ts). Pure, no I/O, no
// Kubernetes types: the injector, trellis-init and a CNI plugin on the node share it.
import { isIPv4, isIPv6 } from "node:net";

/** The proxy's listeners: inbound (captured connections to the pod), outbound, admin. */
export const PROXY_PORTS = { inbound: 4143, outbound: 4140, admin: 4191 } as const;

/** The proxy container's UID: its own connections are never captured. */
export const PROXY_UID = 2102;

/** An inclusive range of TCP ports; a single port is { from: p, to: p }. */
export interface PortRange {
  from: number;
  to: number;
}

export interface CaptureSettings {
  /** Where captured inbound connections go (the proxy's inbound listener). */
  inboundPort: number;
  /** Where captured outbound connections go (the proxy's outbound listener, on loopback). */
  outboundPort: number;
  /** Connections made by this UID (the proxy) are never captured. */
  proxyUid: number;
  /** Destination ports of connections to the pod that go straight to the application. */
  skipInboundPorts: PortRange[];
  /** Destination ports of connections from the pod that bypass the proxy. */
  skipOutboundPorts: PortRange[];
  /** Destination subnets (IPv4 and IPv6 CIDRs) of connections from the pod that bypass the proxy. */
  skipSubnets: string[];
}

/** The proxy's own ports, which inbound capture must never redirect (to itself). */
export const PROXY_OWN_PORTS: readonly PortRange[] = [
  PROXY_PORTS.inbound,
  PROXY_PORTS.outbound,
  PROXY_PORTS.admin,
].map((p) => ({ from: p, to: p }));

/** The settings of a pod with no capture annotations. */
export function defaultCaptureSettings(): CaptureSettings {
  return {
    inboundPort: PROXY_PORTS.inbound,
    outboundPort: PROXY_PORTS.outbound,
    proxyUid: PROXY_UID,
    skipInboundPorts: mergePortRanges(PROXY_OWN_PORTS),
    skipOutboundPorts: [],
    skipSubnets: [],
  };
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const PORT = /^\d{1,5}$/;

function port(text: string): number | undefined {
  if (!PORT.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * "25, 587,4000-4010" → ranges, sorted and merged. Empty text is an empty list. Every item must be
 * a port 1–65535 or a range `a-b` with a ≤ b; anything else refuses the whole list.
 */
export function parsePortList(text: string): Parsed<PortRange[]> {
  const ranges: PortRange[] = [];
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const [a = "", b, extra] = item.split("-").map((s) => s.trim());
    const from = port(a);
    const to = b === undefined ? from : port(b);
    if (from === undefined || to === undefined || extra !== undefined || from > to) {
      return {
        ok: false,
        error: `"${item}" is not a port (1-65535) or a range of ports (from-to, from <= to)`,
      };
    }
    ranges.push({ from, to });
  }
  return { ok: true, value: mergePortRanges(ranges) };
}

/** Sorted, overlapping and adjacent ranges merged. */
export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((x, y) => x.from - y.from || x.to - y.to);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ ...r });
  }
  return out;
}

/** The text form parsePortList reads: "25,587,4000-4010". */
export function formatPortList(ranges: readonly PortRange[]): string {
  return ranges.map((r) => (r.from === r.to ? String(r.from) : `${r.from}-${r.to}`)).join(",");
}

export function portInRanges(p: number, ranges: readonly PortRange[]): boolean {
  return ranges.some((r) => p >= r.from && p <= r.to);
}

export type IpFamily = 4 | 6;

/** The family of a CIDR parseCidr accepted. */
export function cidrFamily(cidr: string): IpFamily {
  return cidr.includes(":") ? 6 : 4;
}

/**
 * One CIDR: an IPv4 or IPv6 address, "/" and a prefix length that fits it (0–32 or 0–128). A
 * bare address is refused (say /32 or /128), so that a typo never widens or narrows a skip.
 */
export function parseCidr(text: string): Parsed<string> {
  const cidr = text.trim();
  const slash = cidr.indexOf("/");
  const address = slash === -1 ? cidr : cidr.slice(0, slash);
  const bits = slash === -1 ? "" : cidr.slice(slash + 1);
  const family = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
  if (family === undefined || !(prefix >= 0 && prefix <= max)) {
    return { ok: false, error: `"${cidr}" is not a CIDR (an IPv4 or IPv6 address, "/" and a prefix length)` };
  }
  return { ok: true, value: `${address.toLowerCase()}/${prefix}` };
}

/** "10.0.0.0/8, fd00::/8" → CIDRs, in the order given, duplicates removed. */
export function parseCidrList(text: string): Parsed<string[]> {
  const out: string[] = [];
  for (const raw of text.split(",")) {
    if (raw.trim() === "") continue;
    const cidr = parseCidr(raw);
    if (!cidr.ok) return cidr;
    if (!out.includes(cidr.value)) out.push(cidr.value);
  }
  return { ok: true, value: out };
}
