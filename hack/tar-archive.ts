// A deterministic tar writer (POSIX ustar) for image layers and OCI archives, and the reader the
// tests use to look inside them. Deterministic means: entries in the order given (callers sort),
// one mtime for every entry, owner 0:0 with no user or group names, modes normalised, no access
// or change times. Owns the byte format only; which files go in a layer is the caller's choice.
// Limits, explicit: names up to 255 bytes (ustar prefix + name), files under 8 GiB, regular
// files, directories and symbolic links only. Extended attributes of a file (e.g. the file
// capabilities of trellis-init's entrypoint) go in a pax header before it, as SCHILY.xattr.<name>
// records, which GNU tar and containerd's layer applier read.
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export type TarEntry =
  | { type: "dir"; path: string; mode: number }
  | { type: "file"; path: string; mode: number; data: Buffer; xattrs?: Record<string, Buffer> }
  | { type: "symlink"; path: string; target: string };

const BLOCK = 512;

function octal(value: number, width: number): string {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width - 1} octal digits`);
  return `${digits.padStart(width - 1, "0")}\0`;
}

/** Splits a path into ustar's prefix (up to 155 bytes) and name (up to 100 bytes). */
function splitName(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: "", name: path };
  for (let i = path.indexOf("/"); i !== -1; i = path.indexOf("/", i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name !== "")
      return { prefix, name };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

/** One pax record: "<length> <key>=<value>\n", the length counting itself. */
function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from("\n")]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** The pax extended header (type x) carrying a file's extended attributes, or none. */
function paxHeader(entry: TarEntry, mtime: number): Buffer[] {
  if (entry.type !== "file" || !entry.xattrs || Object.keys(entry.xattrs).length === 0) return [];
  const records = Buffer.concat(
    Object.keys(entry.xattrs)
      .sort()
      .map((k) => paxRecord(`SCHILY.xattr.${k}`, entry.xattrs![k] as Buffer)),
  );
  const name = `PaxHeaders/${entry.path.split("/").pop()}`;
  const pad = (BLOCK - (records.length % BLOCK)) % BLOCK;
  return [
    header({ type: "file", path: name, mode: 0o644, data: records }, mtime, "x"),
    records,
    Buffer.alloc(pad),
  ];
}

function header(entry: TarEntry, mtime: number, typeFlag?: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  const path = entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  const { prefix, name } = splitName(path);
  const size = entry.type === "file" ? entry.data.length : 0;
  const mode = entry.type === "symlink" ? 0o777 : entry.mode;
  const type = typeFlag ?? { file: "0", dir: "5", symlink: "2" }[entry.type];
  h.write(name, 0, 100, "utf8");
  h.write(octal(mode & 0o7777, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii");
  h.write(octal(0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(mtime, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(type, 156, "ascii");
  if (entry.type === "symlink") {
    if (Buffer.byteLength(entry.target) > 100) throw new Error(`tar: link target too long: ${entry.target}`);
    h.write(entry.target, 157, 100, "utf8");
  }
  h.write("ustar\u000000", 257, "ascii");
  h.write(octal(0, 8), 329, "ascii");
  h.write(octal(0, 8), 337, "ascii");
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

/** The tar stream of `entries`, in the order given, every entry stamped with `mtime` (seconds). */
export function tarArchive(entries: TarEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(...paxHeader(entry, mtime), header(entry, mtime));
    if (entry.type === "file" && entry.data.length > 0) {
      parts.push(entry.data);
      const pad = (BLOCK - (entry.data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/**
 * The entries of a directory tree, parents first and siblings by name, paths relative to `root`.
 * Modes are normalised so the umask of the machine that assembled the tree does not matter:
 * directories 0755 (1777 when sticky), files 0755 when the owner may execute them, else 0644.
 */
export function entriesOfDir(root: string, base = ""): TarEntry[] {
  const out: TarEntry[] = [];
  for (const name of readdirSync(join(root, base)).sort()) {
    const rel = base ? `${base}/${name}` : name;
    const st = lstatSync(join(root, rel));
    if (st.isSymbolicLink()) out.push({ type: "symlink", path: rel, target: readlinkSync(join(root, rel)) });
    else if (st.isDirectory()) {
      out.push({ type: "dir", path: rel, mode: st.mode & 0o1000 ? 0o1777 : 0o755 });
      out.push(...entriesOfDir(root, rel));
    } else if (st.isFile()) {
      const mode = st.mode & 0o100 ? 0o755 : 0o644;
      out.push({ type: "file", path: rel, mode, data: readFileSync(join(root, rel)) });
    } else throw new Error(`tar: ${join(root, rel)} is neither a file, a directory nor a symbolic link`);
  }
  return out;
}

export interface ReadEntry {
  path: string;
  type: "file" | "dir" | "symlink" | "other";
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  data: Buffer;
  target: string;
  /** Extended attributes from a preceding pax header's SCHILY.xattr.* records. */
  xattrs: Record<string, Buffer>;
}

/** The SCHILY.xattr.* records of a pax header's data. */
function paxXattrs(data: Buffer): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (let at = 0; at < data.length; ) {
    const space = data.indexOf(0x20, at);
    const length = Number(data.subarray(at, space).toString("ascii"));
    if (!(length > 0) || space === -1) break;
    const record = data.subarray(space + 1, at + length - 1);
    const eq = record.indexOf(0x3d);
    const key = record.subarray(0, eq).toString("utf8");
    if (key.startsWith("SCHILY.xattr.")) out[key.slice("SCHILY.xattr.".length)] = record.subarray(eq + 1);
    at += length;
  }
  return out;
}

const field = (h: Buffer, at: number, len: number) =>
  h
    .subarray(at, at + len)
    .toString("utf8")
    .replace(/\0.*$/s, "");
const number = (h: Buffer, at: number, len: number) => Number.parseInt(field(h, at, len).trim() || "0", 8);

/** Reads a ustar stream (as written above, or by GNU tar without pax extensions). */
export function readTar(tar: Buffer): ReadEntry[] {
  const out: ReadEntry[] = [];
  let xattrs: Record<string, Buffer> = {};
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const h = tar.subarray(at, at + BLOCK);
    if (h.every((b) => b === 0)) break;
    const prefix = field(h, 345, 155);
    const name = field(h, 0, 100);
    const size = number(h, 124, 12);
    const flag = field(h, 156, 1);
    if (flag === "x") {
      xattrs = paxXattrs(tar.subarray(at + BLOCK, at + BLOCK + size));
      at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
      continue;
    }
    const type =
      flag === "5" ? "dir" : flag === "2" ? "symlink" : flag === "0" || flag === "" ? "file" : "other";
    out.push({
      path: (prefix ? `${prefix}/${name}` : name).replace(/\/$/, ""),
      type,
      mode: number(h, 100, 8),
      uid: number(h, 108, 8),
      gid: number(h, 116, 8),
      mtime: number(h, 136, 12),
      data: tar.subarray(at + BLOCK, at + BLOCK + size),
      target: field(h, 157, 100),
      xattrs,
    });
    xattrs = {};
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
  }
  return out;
}
