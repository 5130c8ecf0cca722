// The Node.js runtime every Trellis program runs on: tests, `npm run up`, benchmarks, CI and the
// images. hack/node-runtime.json is the one place that names it (version, and per CPU the npm
// package that carries the official binaries with its integrity hash). This module installs it
// from the npm registry into the cache (~/.cache/trellis/node-v<version>-linux-<arch>/) with
// `npm pack`, checks the tarball against the pinned hash before unpacking, and says where it is.
// Nothing is downloaded from anywhere but the npm registry, and only when the cache lacks it.
//
// CLI (run by hack/setup.sh, hack/test.sh and hack/up.sh with whatever `node` the machine has):
//   node --import tsx hack/node-runtime.ts bin-dir   installs when missing, prints the bin folder
//   node --import tsx hack/node-runtime.ts version   prints the pinned version

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import pinned from "./node-runtime.json" with { type: "json" };

/** A Node release as the npm registry serves it: one package per CPU, each with its hash. */
export interface NodeRuntimeSpec {
  version: string;
  packages: Record<string, { name: string; integrity: string }>;
}

/** The runtime of every Trellis program (hack/node-runtime.json). */
export const pinnedRuntime: NodeRuntimeSpec = pinned;

const MARKER = ".trellis-integrity";

export function cacheRoot(): string {
  return process.env.TRELLIS_CACHE ?? join(homedir(), ".cache/trellis");
}

function packageFor(spec: NodeRuntimeSpec, arch: string): { name: string; integrity: string } {
  const p = spec.packages[arch];
  if (!p)
    throw new Error(
      `no Node ${spec.version} package is pinned for linux-${arch} (have: ${Object.keys(spec.packages).join(", ")})`,
    );
  return p;
}

/** Where a runtime lives in the cache: <cache>/node-v<version>-linux-<arch>, with bin/node inside. */
export function runtimeDir(spec: NodeRuntimeSpec = pinnedRuntime, arch = process.arch): string {
  return join(cacheRoot(), `node-v${spec.version}-linux-${arch}`);
}

/** The node binary of a runtime, whether installed yet or not. */
export function nodeBinary(spec: NodeRuntimeSpec = pinnedRuntime, arch = process.arch): string {
  return join(runtimeDir(spec, arch), "bin/node");
}

/** The npm-style integrity (`sha512-<base64>`) of some bytes. */
export function integrityOf(bytes: Buffer): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

function installed(dir: string, integrity: string): boolean {
  const marker = join(dir, MARKER);
  return (
    existsSync(join(dir, "bin/node")) && existsSync(marker) && readFileSync(marker, "utf8") === integrity
  );
}

/**
 * Unpacks a package tarball (`package/bin/node`, ...) into `dir` after checking it against the
 * pinned integrity; the folder appears whole or not at all (rename), so parallel set-ups on one
 * machine are safe: the first rename wins and the others discard their copy.
 */
export function unpackRuntime(tarball: string, integrity: string, dir: string): void {
  const actual = integrityOf(readFileSync(tarball));
  if (actual !== integrity)
    throw new Error(`${tarball}: integrity ${actual} is not the pinned ${integrity}; refusing to install it`);
  mkdirSync(join(dir, ".."), { recursive: true });
  const work = mkdtempSync(`${dir}.partial-`);
  try {
    execFileSync("tar", ["-xzf", tarball, "-C", work]);
    const unpacked = join(work, "package");
    if (!existsSync(join(unpacked, "bin/node"))) throw new Error(`${tarball} holds no package/bin/node`);
    writeFileSync(join(unpacked, MARKER), integrity);
    if (installed(dir, integrity)) return; // another set-up finished first
    rmSync(dir, { recursive: true, force: true }); // a broken or unverified copy
    try {
      renameSync(unpacked, dir);
    } catch (err) {
      if (!installed(dir, integrity)) throw err;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The path of the runtime's node binary, installed from the npm registry first if the cache lacks it. */
export function ensureNode(spec: NodeRuntimeSpec = pinnedRuntime, arch = process.arch): string {
  const dir = runtimeDir(spec, arch);
  const pkg = packageFor(spec, arch);
  if (installed(dir, pkg.integrity)) return nodeBinary(spec, arch);
  process.stderr.write(`== Node ${spec.version}: npm pack ${pkg.name}@${spec.version} into ${dir}\n`);
  mkdirSync(cacheRoot(), { recursive: true });
  const download = mkdtempSync(join(cacheRoot(), "npm-pack-"));
  try {
    const out = execFileSync(
      "npm",
      ["pack", `${pkg.name}@${spec.version}`, "--pack-destination", download, "--json", "--silent"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] },
    );
    const [packed] = JSON.parse(out) as Array<{ filename: string }>;
    if (!packed) throw new Error(`npm pack ${pkg.name}@${spec.version} printed no package`);
    unpackRuntime(join(download, packed.filename), pkg.integrity, dir);
  } finally {
    rmSync(download, { recursive: true, force: true });
  }
  return nodeBinary(spec, arch);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const command = process.argv[2];
  if (command === "bin-dir") process.stdout.write(`${join(ensureNode(), "..")}\n`);
  else if (command === "version") process.stdout.write(`${pinnedRuntime.version}\n`);
  else {
    process.stderr.write("usage: node --import tsx hack/node-runtime.ts bin-dir|version\n");
    process.exit(2);
  }
}
