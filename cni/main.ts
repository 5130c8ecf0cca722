// Entry point of the cni image's program (bundled as /app/trellis-cni.mjs). Called by the
// container runtime (CNI_COMMAND set) it is the plugin; otherwise the first argument names the
// role: `install` / `uninstall` (the DaemonSet's installer), `ready` (its readiness probe),
// `validate` (the meshed pod's validator init container).
import { installerMain } from "./installer-main.ts";
import { pluginMain } from "./plugin-main.ts";
import { validatorMain } from "./validator.ts";

const role = process.argv[2] ?? "";
if (process.env.CNI_COMMAND) {
  pluginMain();
} else if (role === "install" || role === "uninstall" || role === "ready") {
  process.exitCode = await installerMain(role, process.argv.slice(3));
} else if (role === "validate") {
  process.exitCode = await validatorMain(process.argv.slice(3));
} else {
  process.stderr.write(`trellis-cni: unknown role "${role}": install, uninstall, ready or validate\n`);
  process.exitCode = 2;
}
