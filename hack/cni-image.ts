// The app layer of the cni image (<registry>/cni:<version>): the bundled trellis-cni program
// (installer, plugin and validator, cni/main.ts), the static launcher the installer puts on
// nodes (cni/launcher, hack/cni-launcher.ts), and nsenter from Debian's util-linux with the
// libraries it links beyond the layers below (runtime and capture tools). Those three layers are
// the plugin tree the installer copies onto each node (cni/plugin-tree.ts).
import {
  chmodSync,
  copyFileSync,
  cpSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { build } from "esbuild";
import { PROXY_UID } from "../capture/capture-settings.ts";
import { TREE_LAYOUT } from "../cni/plugin-tree.ts";
import { cniLauncher } from "./cni-launcher.ts";
import {
  assembleApp,
  assembleCaptureTools,
  assembleRuntime,
  copyDebianPrograms,
  type RuntimeComponent,
} from "./image-rootfs.ts";

/** Where the image keeps the launcher the installer copies (installer-main.ts's default). */
export const LAUNCHER_IN_IMAGE = "app/trellis-cni-launcher";

/** Adds the launcher and nsenter to an assembled app folder; returns the Debian packages added. */
export function addCniTools(appDir: string, below: RuntimeComponent[]): RuntimeComponent[] {
  const launcher = join(appDir, LAUNCHER_IN_IMAGE);
  mkdirSync(dirname(launcher), { recursive: true });
  copyFileSync(cniLauncher(), launcher);
  chmodSync(launcher, 0o755);
  const byPackage = new Map<string, RuntimeComponent>();
  copyDebianPrograms(appDir, [`/${TREE_LAYOUT.nsenter}`], below, byPackage);
  const components = [...byPackage.values()].sort((a, b) => a.name.localeCompare(b.name));
  mkdirSync(join(appDir, "usr/share/doc"), { recursive: true });
  writeFileSync(join(appDir, "usr/share/doc/cni-tools.json"), `${JSON.stringify(components, null, 2)}\n`);
  return components;
}

/** Hard-links (same filesystem) or copies the folder `from` into `to`, links kept as links. */
function merge(from: string, to: string): void {
  for (const name of readdirSync(from)) {
    const src = join(from, name);
    const dst = join(to, name);
    const st = lstatSync(src);
    if (st.isDirectory()) {
      mkdirSync(dst, { recursive: true });
      merge(src, dst);
    } else if (st.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else {
      try {
        linkSync(src, dst);
      } catch {
        cpSync(src, dst);
      }
    }
  }
}

/**
 * The cni image's root filesystem as one folder (`root`), assembled by the image build's own
 * functions from this machine's Node, iptables and nsenter and the sources' bundle, without
 * writing an image: what the installer copies onto a node (tests and the plugin benchmark).
 * `work` holds the layers.
 */
export async function assembleCniImageRoot(work: string, root: string): Promise<void> {
  const layers = join(work, "layers");
  const runtime = assembleRuntime(
    join(layers, "runtime"),
    { node: process.execPath, strip: false },
    PROXY_UID,
  );
  const tools = assembleCaptureTools(join(layers, "tools"), runtime);
  const bundled = join(work, "trellis-cni.mjs");
  await build({
    entryPoints: [new URL("../cni/main.ts", import.meta.url).pathname],
    outfile: bundled,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
  });
  writeFileSync(join(work, "packages.json"), "[]\n");
  assembleApp(join(layers, "cni"), { file: bundled, as: "trellis-cni.mjs" }, join(work, "packages.json"));
  addCniTools(join(layers, "cni"), [...runtime, ...tools]);
  mkdirSync(root, { recursive: true });
  for (const layer of ["runtime", "tools", "cni"]) merge(join(layers, layer), root);
}
