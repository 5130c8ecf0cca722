// The DaemonSet's roles as processes:
//   trellis-cni install   [--bin-dir /host/cni/bin] [--conf-dir /host/cni/net.d] [--interval-ms 5000]
//   trellis-cni uninstall [same flags]
//   trellis-cni ready     [same flags] [--uninstalled]   (the readiness probe: exit 0 or the reason)
// install: tree and launcher, a VERSION check of the installed plugin, then the chain, kept in
// place on every change of the configuration directory (fs.watch) and every interval. Ready
// once all of that holds (a marker in --state-dir, an emptyDir: a new pod is not ready before
// it has installed its own version). Logs are one JSON line per change.
import { existsSync, mkdirSync, watch, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  checkInstalledPlugin,
  filesProblem,
  type InstallerPaths,
  installedProblem,
  installTree,
  type Log,
  remnants,
  syncChain,
  uninstall,
} from "./installer.ts";

export interface InstallerFlags extends InstallerPaths {
  intervalMs: number;
  stateDir: string;
  uninstalled: boolean;
}

export function parseInstallerFlags(argv: string[]): InstallerFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      "bin-dir": { type: "string", default: "/host/cni/bin" },
      "conf-dir": { type: "string", default: "/host/cni/net.d" },
      "source-root": { type: "string", default: "/" },
      launcher: { type: "string", default: "/app/trellis-cni-launcher" },
      "state-dir": { type: "string", default: "/run/trellis-cni" },
      "interval-ms": { type: "string", default: "5000" },
      uninstalled: { type: "boolean", default: false },
    },
    strict: true,
  });
  return {
    binDir: String(values["bin-dir"]),
    confDir: String(values["conf-dir"]),
    sourceRoot: String(values["source-root"]),
    launcher: String(values.launcher),
    stateDir: String(values["state-dir"]),
    intervalMs: Math.max(100, Number(values["interval-ms"]) || 5000),
    uninstalled: Boolean(values.uninstalled),
  };
}

const log: Log = (msg, fields = {}) =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`);

const INSTALLED = "installed";
const UNINSTALLED = "uninstalled";

function mark(flags: InstallerFlags, name: string, present: boolean): void {
  mkdirSync(flags.stateDir, { recursive: true });
  const path = join(flags.stateDir, name);
  if (present) writeFileSync(path, `${new Date().toISOString()}\n`);
  else if (existsSync(path)) writeFileSync(path, "");
}

/** Keeps running `step` on every change of `dir` and every interval until SIGTERM; then resolves. */
function keep(flags: InstallerFlags, dir: string, step: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const run = () => {
    try {
      step();
    } catch (err) {
      log("step failed; retrying", { error: String(err) });
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(run, 200);
  };
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(dir, soon);
    watcher.on("error", () => {});
  } catch {}
  const interval = setInterval(run, flags.intervalMs);
  run();
  return new Promise((resolve) => {
    const stop = () => {
      clearInterval(interval);
      clearTimeout(timer);
      watcher?.close();
      resolve();
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

export async function installerMain(role: string, argv: string[]): Promise<number> {
  const flags = parseInstallerFlags(argv);
  if (role === "ready") {
    const problem = flags.uninstalled
      ? remnants(flags).length > 0
        ? `still on the node: ${remnants(flags).join(", ")}`
        : !existsSync(join(flags.stateDir, UNINSTALLED))
          ? "not uninstalled yet"
          : undefined
      : !existsSync(join(flags.stateDir, INSTALLED))
        ? "not installed yet"
        : installedProblem(flags);
    if (problem) process.stdout.write(`trellis-cni: ${problem}\n`);
    return problem ? 1 : 0;
  }
  if (role === "install") {
    mark(flags, INSTALLED, false);
    let installedTree: string | undefined;
    await keep(flags, flags.confDir, () => {
      // The tree once per process (hashing it reads every file), again only if it disappeared.
      if (installedTree === undefined || filesProblem(flags.binDir)) {
        const { id } = installTree(flags, log);
        checkInstalledPlugin(flags.binDir);
        if (installedTree !== id) log("plugin installed and answering VERSION", { tree: id });
        installedTree = id;
      }
      const chain = syncChain(flags.confDir, log);
      const ready = chain.problem === undefined;
      if (chain.problem) log("not chained", { problem: chain.problem });
      mark(flags, INSTALLED, ready);
    });
    log("stopping; the plugin stays installed (uninstall is a separate role)");
    return 0;
  }
  if (role === "uninstall") {
    mark(flags, UNINSTALLED, false);
    await keep(flags, flags.confDir, () => {
      uninstall(flags, log);
      const left = remnants(flags);
      if (left.length === 0) mark(flags, UNINSTALLED, true);
    });
    return 0;
  }
  process.stderr.write(`trellis-cni: unknown role ${role}\n`);
  return 2;
}
