// The installer, run by the trellis-cni DaemonSet on every node. `install` puts the plugin tree
// and launcher into the node's CNI binary directory (content-addressed, switched atomically,
// checked by running the installed plugin's VERSION), chains the plugin into the conflist the
// runtime reads, and keeps it chained: when the network plugin rewrites its configuration, or
// another file becomes the one the runtime reads, the entry is put back (and taken out of a file
// the runtime no longer reads). On SIGTERM it leaves everything in place: a DaemonSet update
// must not open a window in which pods start uncaptured. `uninstall` takes the entry out of
// every file (restoring their bytes), removes the launcher and trees, and then waits to be
// stopped; the operator runs it before it deletes the DaemonSet (docs/cni.md).
// Owns the node's files. What the edits are is conflist.ts's; the tree's layout plugin-tree.ts's.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { chainPlugin, configurationFiles, isUsableConfiguration, unchainPlugin } from "./conflist.ts";
import { CURRENT_TREE, LAUNCH_FILE, launchSpec, PLUGIN_NAME, TREE_LAYOUT, TREES_DIR } from "./plugin-tree.ts";

export interface InstallerPaths {
  /** The node's CNI binary directory, as mounted in the installer's container. */
  binDir: string;
  /** The node's CNI configuration directory, as mounted. */
  confDir: string;
  /** Where the tree's folders are copied from: the image's root. */
  sourceRoot: string;
  /** The launcher binary to install as <binDir>/trellis-cni. */
  launcher: string;
}

export type Log = (msg: string, fields?: Record<string, unknown>) => void;

const tmpName = (name: string) => `.${name}.tmp-${process.pid}`;

/** Writes a file by renaming a complete copy over it; keeps the old file's mode when there is one. */
function replaceFile(path: string, content: string | Buffer, mode: number): void {
  const dir = join(path, "..");
  const tmp = join(dir, tmpName(path.slice(dir.length + 1)));
  writeFileSync(tmp, content);
  chmodSync(tmp, existsSync(path) ? statSync(path).mode & 0o7777 : mode);
  renameSync(tmp, path);
}

/** Every file, folder and link under the tree's folders of `root`, sorted, relative to root. */
function treeEntries(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    out.push(rel);
    const st = lstatSync(join(root, rel));
    if (st.isDirectory()) for (const name of readdirSync(join(root, rel)).sort()) walk(join(rel, name));
  };
  for (const folder of TREE_LAYOUT.folders) if (existsSync(join(root, folder))) walk(folder);
  return out;
}

/** The tree's id: a hash of every entry's path, kind, mode and content (or link target). */
export function treeId(root: string): string {
  const hash = createHash("sha256");
  for (const rel of treeEntries(root)) {
    const path = join(root, rel);
    const st = lstatSync(path);
    hash.update(`${rel}\0${st.mode & 0o170777}\0`);
    if (st.isSymbolicLink()) hash.update(readlinkSync(path));
    else if (st.isFile()) hash.update(readFileSync(path));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

function copyTree(from: string, to: string): void {
  for (const rel of treeEntries(from)) {
    const src = join(from, rel);
    const dst = join(to, rel);
    const st = lstatSync(src);
    if (st.isDirectory()) mkdirSync(dst, { recursive: true, mode: st.mode & 0o7777 });
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else if (st.isFile()) {
      copyFileSync(src, dst);
      chmodSync(dst, st.mode & 0o7777);
    }
  }
}

/**
 * Puts this image's tree and launcher on the node, makes the tree current, removes trees older
 * than the one it replaces. Returns the tree's id and whether anything was written.
 */
export function installTree(paths: InstallerPaths, log: Log): { id: string; changed: boolean } {
  const trees = join(paths.binDir, TREES_DIR);
  mkdirSync(trees, { recursive: true, mode: 0o755 });
  const id = treeId(paths.sourceRoot);
  const target = join(trees, id);
  let changed = false;
  if (!existsSync(join(target, LAUNCH_FILE))) {
    const staging = join(trees, tmpName(id));
    rmSync(staging, { recursive: true, force: true });
    rmSync(target, { recursive: true, force: true });
    copyTree(paths.sourceRoot, staging);
    writeFileSync(join(staging, LAUNCH_FILE), `${JSON.stringify(launchSpec(), null, 2)}\n`);
    renameSync(staging, target);
    changed = true;
    log("plugin tree copied", { tree: id });
  }
  const current = join(trees, CURRENT_TREE);
  const previous = existsSync(current) ? readlinkSync(current) : undefined;
  if (previous !== id) {
    const link = join(trees, tmpName(CURRENT_TREE));
    rmSync(link, { force: true });
    symlinkSync(id, link);
    renameSync(link, current);
    changed = true;
    log("plugin tree switched", { tree: id, previous });
  }
  const launcher = readFileSync(paths.launcher);
  const installed = join(paths.binDir, PLUGIN_NAME);
  if (!existsSync(installed) || !readFileSync(installed).equals(launcher)) {
    replaceFile(installed, launcher, 0o755);
    chmodSync(installed, 0o755);
    changed = true;
    log("launcher installed", { path: installed });
  }
  // Keep the tree just replaced (a plugin started a moment ago may still run from it).
  for (const name of readdirSync(trees)) {
    if (name === id || name === CURRENT_TREE || name === previous) continue;
    rmSync(join(trees, name), { recursive: true, force: true });
    log("old plugin tree removed", { tree: name });
  }
  return { id, changed };
}

/** Runs the installed plugin's VERSION through the launcher; throws when it does not answer. */
export function checkInstalledPlugin(binDir: string): string {
  const r = spawnSync(join(binDir, PLUGIN_NAME), [], {
    input: '{"cniVersion":"1.0.0"}',
    encoding: "utf8",
    env: { CNI_COMMAND: "VERSION", PATH: "/usr/sbin:/usr/bin" },
    timeout: 30_000,
  });
  const answer = r.stdout?.trim() ?? "";
  if (r.status !== 0 || !answer.includes("supportedVersions"))
    throw new Error(
      `the installed plugin does not answer VERSION: ${answer}${r.stderr ?? ""}${r.error ?? ""}`,
    );
  return answer;
}

export interface ChainState {
  /** The file the runtime reads, chained; undefined when there is none yet. */
  file?: string;
  /** Why the plugin is not chained, when it is not. */
  problem?: string;
}

/**
 * Chains the plugin into the file the runtime reads and takes it out of every other file.
 * Idempotent; writes only what changes.
 */
export function syncChain(confDir: string, log: Log): ChainState {
  const files = configurationFiles(existsSync(confDir) ? readdirSync(confDir) : []);
  const read = (f: string) => readFileSync(join(confDir, f), "utf8");
  const active = files.find((f) => isUsableConfiguration(read(f)));
  for (const f of files) {
    if (f === active) continue;
    const text = read(f);
    const out = unchainPlugin(text);
    if (out.ok && out.changed) {
      replaceFile(join(confDir, f), out.text, 0o644);
      log("plugin taken out of a file the runtime no longer reads", { file: f });
    }
  }
  if (active === undefined) return { problem: `no CNI configuration in ${confDir} yet` };
  const out = chainPlugin(read(active));
  if (!out.ok) return { file: active, problem: `${active} cannot be chained: ${out.reason}` };
  if (out.changed) {
    replaceFile(join(confDir, active), out.text, 0o644);
    log("plugin chained", { file: active });
  }
  return { file: active };
}

/** Takes the plugin out of every configuration file (restoring their bytes) and removes its files. */
export function uninstall(paths: Pick<InstallerPaths, "binDir" | "confDir">, log: Log): void {
  for (const f of configurationFiles(existsSync(paths.confDir) ? readdirSync(paths.confDir) : [])) {
    const out = unchainPlugin(readFileSync(join(paths.confDir, f), "utf8"));
    if (out.ok && out.changed) {
      replaceFile(join(paths.confDir, f), out.text, 0o644);
      log("plugin unchained", { file: f });
    }
  }
  for (const name of [PLUGIN_NAME, TREES_DIR]) {
    const path = join(paths.binDir, name);
    if (existsSync(path) || isLink(path)) {
      rmSync(path, { recursive: true, force: true });
      log("removed", { path });
    }
  }
}

function isLink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

/** What is left of the plugin on the node: an empty list when it is fully removed. */
export function remnants(paths: Pick<InstallerPaths, "binDir" | "confDir">): string[] {
  const left: string[] = [];
  for (const name of [PLUGIN_NAME, TREES_DIR])
    if (existsSync(join(paths.binDir, name)) || isLink(join(paths.binDir, name))) left.push(name);
  for (const f of configurationFiles(existsSync(paths.confDir) ? readdirSync(paths.confDir) : [])) {
    const out = unchainPlugin(readFileSync(join(paths.confDir, f), "utf8"));
    if (out.ok && out.changed) left.push(`${f} (still chained)`);
  }
  return left;
}

/** Why the plugin's files are not in place, or undefined when they are. */
export function filesProblem(binDir: string): string | undefined {
  if (!existsSync(join(binDir, PLUGIN_NAME))) return `${PLUGIN_NAME} is not in the CNI binary directory`;
  if (!existsSync(join(binDir, TREES_DIR, CURRENT_TREE, LAUNCH_FILE))) return "the plugin tree is missing";
  return undefined;
}

/** Why the installed plugin is not ready on this node, or undefined when it is. */
export function installedProblem(paths: Pick<InstallerPaths, "binDir" | "confDir">): string | undefined {
  const files = filesProblem(paths.binDir);
  if (files) return files;
  const names = configurationFiles(existsSync(paths.confDir) ? readdirSync(paths.confDir) : []);
  const active = names.find((f) => isUsableConfiguration(readFileSync(join(paths.confDir, f), "utf8")));
  if (active === undefined) return "the node has no CNI configuration yet";
  const chained = chainPlugin(readFileSync(join(paths.confDir, active), "utf8"));
  if (!chained.ok) return `${active} cannot be chained: ${chained.reason}`;
  if (chained.changed) return `${active} does not list ${PLUGIN_NAME}`;
  return undefined;
}
