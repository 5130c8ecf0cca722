/**
 * Sets of TCP ports as settings write them: `25,587,3306,8000-8100`, a JSON array of ports
 * and ranges, or `none`. Used for opaque ports (never sniffed, so server-first protocols do not
 * stall) and for the inbound ports that admit plaintext.
 *
 * Owns: parsing and membership. Does not decide what a port in a set means.
 */

export interface PortSet {
  has(port: number): boolean;
  /** Sorted, merged ranges, for logs and docs. */
  readonly ranges: readonly (readonly [number, number])[];
}

/**
 * Ports where the server speaks first or the protocol is not HTTP, as mature meshes default
 * them (Linkerd's opaque ports): SMTP, submission, MySQL, Galera, PostgreSQL, Redis,
 * Elasticsearch transport, memcached.
 */
export const defaultOpaquePorts: readonly number[] = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211];

export function portSet(ranges: readonly (readonly [number, number])[]): PortSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  return {
    ranges: merged,
    has(port: number): boolean {
      for (const [lo, hi] of merged) {
        if (port < lo) return false;
        if (port <= hi) return true;
      }
      return false;
    },
  };
}

function parseOne(item: unknown): [number, number] | string {
  const text = typeof item === "number" ? String(item) : typeof item === "string" ? item.trim() : undefined;
  if (text === undefined) return `${JSON.stringify(item)} is not a port`;
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return `"${text}" is not a port or a range like 8000-8100`;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || lo > hi) return `"${text}" is outside 1-65535 or reversed`;
  return [lo, hi];
}

/** Parses a setting; returns the set or the problems, one per bad item. */
export function parsePortSet(value: unknown): { ok: true; set: PortSet } | { ok: false; errors: string[] } {
  if (value === "none" || (Array.isArray(value) && value.length === 0)) return { ok: true, set: portSet([]) };
  const items = typeof value === "string" ? value.split(",").filter((s) => s.trim() !== "") : value;
  if (!Array.isArray(items) || items.length === 0) {
    return { ok: false, errors: ['expected ports and ranges such as "25,3306,8000-8100", or "none"'] };
  }
  const ranges: [number, number][] = [];
  const errors: string[] = [];
  for (const item of items) {
    const r = parseOne(item);
    if (typeof r === "string") errors.push(r);
    else ranges.push(r);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, set: portSet(ranges) };
}
