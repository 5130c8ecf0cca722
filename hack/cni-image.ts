// The app layer of the cni image (<registry>/cni:<version>): the bundled trellis-cni program
// (installer, plugin and validator, cni/main.ts), the static launcher the installer puts on
// nodes (cni/launcher, hack/cni-launcher.ts), and nsenter from Debian's util-linux with the
// libraries it links beyond the layers below (runtime and capture tools). Those three layers are
// the plugin tree the installer copies onto each node (cni/plugin-tree.ts).
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { TREE_LAYOUT } from "../cni/plugin-tree.ts";
import { cniLauncher } from "./cni-launcher.ts";
import { copyDebianPrograms, type RuntimeComponent } from "./image-rootfs.ts";

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
