// The root filesystems of Trellis's images, assembled as folders: one runtime shared by every
// image (Node and only the shared libraries it links, users, licenses), one app folder per
// image (the bundled program and the npm packages inside it), and for trellis-init the capture
// tools (iptables from Debian's packages and the entrypoint that raises its capabilities). No shell, no package manager, no
// compiler, no CA store: the operator trusts the API server's CA from its service account, the
// proxy and control plane trust the mesh's bundle, and Node carries its own root store anyway.
// Owns what goes into the images; the image format is hack/oci-image.ts's.
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";

/** UID/GID of the operator and control-plane processes (the Deployments run as it too). */
export const NONROOT_UID = 65532;

export interface RuntimeComponent {
  name: string;
  version: string;
  files: string[];
  /** Where its license text is, inside the image. */
  license: string;
}

/** The shared libraries `ldd` lists for a binary, as [path it is looked up at, file to copy]. */
export function sharedLibraries(binary: string): Array<[string, string]> {
  const out = execFileSync("ldd", [binary], { encoding: "utf8" });
  const libs: Array<[string, string]> = [];
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)\s*\(/.exec(line) ?? /^\s*(\/\S+)\s*\(/.exec(line);
    if (m?.[1]) libs.push([m[1], realpathSync(m[1])]);
  }
  if (!libs.some(([p]) => /\/libc\.so/.test(p))) throw new Error(`ldd ${binary}: no libc found in\n${out}`);
  return libs;
}

/** The Debian package that owns a file, and its version; undefined off Debian. */
function debianPackage(path: string): { name: string; version: string } | undefined {
  // Merged /usr: dpkg may know the file by its pre-merge path (/sbin/xtables-nft-multi for /usr/sbin/...).
  const unmerged = path.replace(/^\/usr\/(s?bin|lib)\//, "/$1/");
  for (const candidate of [path, realpathSync(path), unmerged]) {
    const r = spawnSync("dpkg", ["-S", candidate], { encoding: "utf8" });
    const name = r.status === 0 ? r.stdout.split(":")[0] : undefined;
    if (!name) continue;
    const version =
      execFileSync("dpkg-query", ["-W", name], { encoding: "utf8" }).trim().split("\t")[1] ?? "";
    return { name, version };
  }
  return undefined;
}

function copyInto(root: string, path: string, from: string, mode?: number): void {
  const to = join(root, path);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  if (mode !== undefined) chmodSync(to, mode);
}

function writeInto(root: string, path: string, content: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

/**
 * Node's own license file: beside the binary's installation (the registry package and nodejs.org
 * archives: <dir>/bin/node, <dir>/LICENSE) first, then where Debian puts it.
 */
function nodeLicense(node: string): string {
  for (const p of [join(dirname(realpathSync(node)), "..", "LICENSE"), "/usr/share/doc/nodejs/LICENSE"])
    if (existsSync(p)) return p;
  throw new Error(`no LICENSE found for ${node}`);
}

export interface RuntimeOptions {
  node: string;
  /** Strip the symbol table and debug info from the Node binary (about 12 MB less; stack traces of JS are unaffected). */
  strip: boolean;
}

/**
 * Assembles the runtime folder: /usr/bin/node, the libraries ldd lists (at the paths the dynamic
 * loader looks them up), /etc/passwd and /etc/group with nonroot (65532) and the proxy's user,
 * /etc/nsswitch.conf (files before DNS), /tmp, and the license texts; returns what it holds.
 */
export function assembleRuntime(root: string, options: RuntimeOptions, proxyUid: number): RuntimeComponent[] {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  if (options.strip) execFileSync("strip", ["--strip-all", "-o", join(root, "usr/bin/node"), options.node]);
  else copyInto(root, "usr/bin/node", options.node);
  chmodSync(join(root, "usr/bin/node"), 0o755);
  const nodeVersion = execFileSync(options.node, ["-p", "process.versions.node"], {
    encoding: "utf8",
  }).trim();
  copyInto(root, "usr/share/doc/node/LICENSE", nodeLicense(options.node), 0o644);
  const components: RuntimeComponent[] = [
    { name: "node", version: nodeVersion, files: ["/usr/bin/node"], license: "/usr/share/doc/node/LICENSE" },
  ];
  const byPackage = new Map<string, RuntimeComponent>();
  for (const [path, file] of sharedLibraries(options.node)) {
    copyInto(root, path.slice(1), file, 0o755);
    const pkg = debianPackage(path) ?? { name: path.split("/").pop()!, version: "unknown" };
    const license = `/usr/share/doc/${pkg.name}/copyright`;
    const c = byPackage.get(pkg.name) ?? { name: pkg.name, version: pkg.version, files: [], license };
    c.files.push(path);
    byPackage.set(pkg.name, c);
    if (pkg.version !== "unknown") copyInto(root, license.slice(1), license, 0o644);
  }
  components.push(...[...byPackage.values()].sort((a, b) => a.name.localeCompare(b.name)));
  writeInto(
    root,
    "etc/passwd",
    `root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:${NONROOT_UID}:${NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\ntrellis-proxy:x:${proxyUid}:${proxyUid}:trellis-proxy:/:/sbin/nologin\n`,
  );
  writeInto(root, "etc/group", `root:x:0:\nnonroot:x:${NONROOT_UID}:\ntrellis-proxy:x:${proxyUid}:\n`);
  writeInto(root, "etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n");
  mkdirSync(join(root, "tmp"));
  chmodSync(join(root, "tmp"), 0o1777);
  writeInto(root, "usr/share/doc/runtime.json", `${JSON.stringify(components, null, 2)}\n`);
  return components;
}

/**
 * Assembles an app folder: /app/<program>.mjs, the files it loads beside it (the proxy's native
 * addon) and /app/packages.json (the npm packages inside it).
 */
export function assembleApp(
  root: string,
  program: { file: string; as: string; beside?: readonly { file: string; as: string }[] },
  packagesJson: string,
): void {
  rmSync(root, { recursive: true, force: true });
  copyInto(root, `app/${program.as}`, program.file, 0o644);
  for (const extra of program.beside ?? []) copyInto(root, `app/${extra.as}`, extra.file, 0o644);
  copyInto(root, "app/packages.json", packagesJson, 0o644);
}

/** iptables for both backends and families, by the names trellis-init runs (capture/init.ts). */
const IPTABLES_TOOLS = ["iptables", "ip6tables"].flatMap((family) =>
  ["nft", "legacy"].flatMap((backend) => ["save", "restore"].map((verb) => `${family}-${backend}-${verb}`)),
);

/** Where Debian keeps the iptables extensions (REDIRECT, owner, tcp, ...), loaded at run time. */
const XTABLES_LIBDIR = "/usr/lib/x86_64-linux-gnu/xtables";

/** The init image's entrypoint, built from capture/native/init-exec.c: raises NET_ADMIN and NET_RAW, runs Node. */
export const INIT_EXEC = "/usr/sbin/trellis-init";
const INIT_EXEC_SOURCE = join(dirname(new URL(import.meta.url).pathname), "../capture/native/init-exec.c");

/**
 * `security.capability` for the given capabilities, permitted only (VFS_CAP_REVISION_2, no
 * effective bit: the program is capability-aware and raises them itself), as `setcap` writes it.
 */
export function fileCapabilities(caps: number[]): Buffer {
  const data = Buffer.alloc(20);
  data.writeUInt32LE(0x02000000, 0);
  data.writeUInt32LE(
    caps.reduce((bits, c) => bits | (1 << c), 0),
    4,
  );
  return data;
}

/**
 * Compiles the init image's entrypoint with the machine's C compiler (libc only; deterministic:
 * no build id, no paths).
 */
function compileInitExec(out: string): void {
  mkdirSync(dirname(out), { recursive: true });
  const repo = join(dirname(INIT_EXEC_SOURCE), "../..");
  execFileSync(
    process.env.CC ?? "cc",
    [
      "-O2",
      "-Wall",
      "-Wextra",
      "-Werror",
      "-Wl,--build-id=none",
      `-ffile-prefix-map=${repo}=.`,
      "-o",
      out,
      INIT_EXEC_SOURCE,
    ],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  chmodSync(out, 0o755);
}

/**
 * Copies programs of Debian's packages into `root` at their paths, with the libraries they link
 * beyond those of `below` (the layers underneath) and each package's copyright file, recording
 * every file under its package in `byPackage`. Returns the recorder, for files added by hand.
 */
export function copyDebianPrograms(
  root: string,
  programs: string[],
  below: RuntimeComponent[],
  byPackage: Map<string, RuntimeComponent>,
): (path: string) => void {
  const present = new Set(below.flatMap((c) => c.files));
  const record = (path: string) => {
    const pkg = debianPackage(path);
    if (!pkg) throw new Error(`${path} belongs to no Debian package: the images are made from Debian's`);
    const license = `/usr/share/doc/${pkg.name}/copyright`;
    const c = byPackage.get(pkg.name) ?? { name: pkg.name, version: pkg.version, files: [], license };
    c.files.push(path);
    byPackage.set(pkg.name, c);
    copyInto(root, license.slice(1), license, 0o644);
  };
  for (const program of programs) {
    copyInto(root, program.slice(1), realpathSync(program), 0o755);
    record(program);
    for (const [path, file] of sharedLibraries(program)) {
      if (present.has(path) || existsSync(join(root, path))) continue;
      copyInto(root, path.slice(1), file, 0o755);
      record(path);
    }
  }
  return record;
}

/**
 * Assembles the capture tools of the trellis-init image: from Debian's packages the two xtables
 * programs (nf_tables and legacy backends) with the links iptables needs and the extensions
 * folder, the libraries they link beyond those of `runtime` (the layer below), their copyright
 * files and /usr/share/doc/capture-tools.json naming every package with its version; and the
 * entrypoint compiled from capture/native/init-exec.c.
 */
export function assembleCaptureTools(root: string, runtime: RuntimeComponent[]): RuntimeComponent[] {
  rmSync(root, { recursive: true, force: true });
  compileInitExec(join(root, INIT_EXEC.slice(1)));
  const programs = ["/usr/sbin/xtables-nft-multi", "/usr/sbin/xtables-legacy-multi"];
  const byPackage = new Map<string, RuntimeComponent>();
  const record = copyDebianPrograms(root, programs, runtime, byPackage);
  for (const name of IPTABLES_TOOLS) {
    const backend = name.includes("-nft-") ? "xtables-nft-multi" : "xtables-legacy-multi";
    symlinkSync(backend, join(root, "usr/sbin", name));
  }
  mkdirSync(join(root, XTABLES_LIBDIR.slice(1)), { recursive: true });
  for (const ext of readdirSync(XTABLES_LIBDIR)
    .filter((f) => /^lib(xt|ipt|ip6t)_.*\.so$/.test(f))
    .sort()) {
    copyInto(root, join(XTABLES_LIBDIR, ext).slice(1), join(XTABLES_LIBDIR, ext), 0o755);
  }
  record(join(XTABLES_LIBDIR, "libxt_REDIRECT.so"));
  const components = [...byPackage.values()].sort((a, b) => a.name.localeCompare(b.name));
  writeInto(root, "usr/share/doc/capture-tools.json", `${JSON.stringify(components, null, 2)}\n`);
  // The xtables lock of the legacy backend lives here (an emptyDir in the pod: the root is read-only).
  mkdirSync(join(root, "run"));
  return components;
}
