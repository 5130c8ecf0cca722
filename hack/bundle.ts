// Bundles the programs Trellis ships into single ES modules under dist/ (or --outdir):
//   trellis.mjs       the operator command (bin/trellis.ts)
//   controlplane.mjs  injector, identity and destination (controlplane/main.ts)
//   proxy.mjs         the sidecar proxy (proxy/main.ts)
//   proxy-native.node the proxy's native addon (capture, memory release; hack/build-native.ts)
//   trellis-init.mjs  the capture rules installer of meshed pods (capture/init-main.ts)
//   trellis-cni.mjs   the CNI plugin, its node installer and the pods' validator (cni/main.ts)
// and the kubectl plugin: kubectl-trellis (trellis.mjs as one executable file), its krew archive
// kubectl-trellis.tar.gz and krew/trellis.yaml, the plugin manifest for that archive.
// Each bundle runs under plain `node` (no tsx, no node_modules) and comes with
// <name>.packages.json: the npm packages (name, version, license) inlined in it, read from
// esbuild's metafile, for the image's package list. The output is a pure function of the
// sources and the lock file: no timestamps, no absolute paths.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { build, type Plugin } from "esbuild";
import pkg from "../package.json" with { type: "json" };
import { buildNativeAddon } from "./build-native.ts";
import { PLUGIN_ARCHIVE, PLUGIN_BINARY, pluginArchive, renderKrewManifest } from "./krew-manifest.ts";
import { pinnedRuntime } from "./node-runtime.ts";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");

export const PROGRAMS = [
  { name: "trellis", entry: "bin/trellis.ts" },
  { name: "controlplane", entry: "controlplane/main.ts" },
  { name: "proxy", entry: "proxy/main.ts" },
  { name: "trellis-init", entry: "capture/init-main.ts" },
  { name: "trellis-cni", entry: "cni/main.ts" },
] as const;

export interface BundledPackage {
  name: string;
  version: string;
  license: string;
}

/** The npm packages whose files esbuild put into a bundle, from its metafile inputs. */
export function packagesOf(inputs: string[]): BundledPackage[] {
  const dirs = new Set<string>();
  for (const input of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m?.[1]) dirs.add(m[1]);
  }
  const out = new Map<string, BundledPackage>();
  for (const dir of dirs) {
    const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8")) as {
      name: string;
      version: string;
      license?: string;
    };
    out.set(`${pkg.name}@${pkg.version}`, {
      name: pkg.name,
      version: pkg.version,
      license: pkg.license ?? "UNKNOWN",
    });
  }
  return [...out.values()].sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

/**
 * Node's built-in modules as `process.getBuiltinModule(id)`, not as `import … from "node:…"`.
 * An ES module import of a built-in goes through its ES module facade, which reads every export
 * of the module once — and so runs the lazy getters Node keeps for rarely used parts:
 * `crypto.webcrypto`, `fs.promises`, `stream.promises`, `zlib`, `worker_threads`, the web
 * streams. On Node 24 the proxy bundle loaded 21 more built-in modules that way and held
 * 3.5 MB more RSS idle (docs/node-runtime.md, "What the bundle loads at start"). Through this
 * plugin each built-in is the module object itself, as `require` returns it; esbuild's
 * CommonJS interop reads a named import when the code uses it, so nothing else changes.
 */
const builtinsWithoutFacade: Plugin = {
  name: "builtins-without-esm-facade",
  setup(b) {
    const ids = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    // Node's own `punycode` is deprecated (DEP0040) and warns on every start of a program that
    // loads it from outside node_modules — as a bundle does: tr46 and whatwg-url (under
    // @kubernetes/client-node's node-fetch) require it, and `kubectl trellis` printed the warning
    // on every command. The npm package is the same library; `punycode/` names it, not the built-in.
    b.onResolve({ filter: /^punycode$/ }, (args) =>
      b.resolve("punycode/", { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer }),
    );
    b.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) =>
      ids.has(args.path) || args.path.startsWith("node:")
        ? { path: args.path, namespace: "node-builtin" }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "node-builtin" }, (args) => ({
      contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

export async function bundle(outdir: string, minify = true): Promise<void> {
  mkdirSync(outdir, { recursive: true });
  for (const program of PROGRAMS) {
    const result = await build({
      absWorkingDir: root,
      entryPoints: [program.entry],
      outfile: join(outdir, `${program.name}.mjs`),
      bundle: true,
      platform: "node",
      // The runtime the images carry, so esbuild lowers nothing it supports.
      target: `node${pinnedRuntime.version}`,
      format: "esm",
      minify,
      // Names stay readable in stack traces and logs.
      keepNames: true,
      legalComments: "none",
      metafile: true,
      logLevel: "warning",
      plugins: [builtinsWithoutFacade],
      // CommonJS dependencies call require(); an ES module has none unless given one.
      banner: {
        js: "import { createRequire as __trellisRequire } from 'node:module'; const require = __trellisRequire(import.meta.url);",
      },
    });
    const packages = packagesOf(Object.keys(result.metafile.inputs));
    writeFileSync(join(outdir, `${program.name}.packages.json`), `${JSON.stringify(packages, null, 2)}\n`);
  }
  // proxy.mjs loads it from its own folder (proxy/native-addon.ts).
  buildNativeAddon(join(outdir, NATIVE_ADDON));
  writePlugin(outdir);
}

/** kubectl's plugin convention: an executable named kubectl-trellis on PATH. */
function writePlugin(outdir: string): void {
  const program = Buffer.concat([
    Buffer.from("#!/usr/bin/env node\n"),
    readFileSync(join(outdir, "trellis.mjs")),
  ]);
  const bin = join(outdir, PLUGIN_BINARY);
  writeFileSync(bin, program);
  chmodSync(bin, 0o755);
  const archive = pluginArchive(program);
  writeFileSync(join(outdir, PLUGIN_ARCHIVE), archive);
  mkdirSync(join(outdir, "krew"), { recursive: true });
  writeFileSync(join(outdir, "krew", "trellis.yaml"), renderKrewManifest(`v${pkg.version}`, archive));
}

/** The proxy's native addon, beside proxy.mjs in dist/ and in the image's /app. */
export const NATIVE_ADDON = "proxy-native.node";

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { outdir: { type: "string", default: join(root, "dist") }, "no-minify": { type: "boolean" } },
  });
  await bundle(resolve(String(values.outdir)), !values["no-minify"]);
  for (const p of PROGRAMS) process.stdout.write(`${join(String(values.outdir), `${p.name}.mjs`)}\n`);
  process.stdout.write(`${join(String(values.outdir), PLUGIN_BINARY)}\n`);
}
