/**
 * What trellis-cni costs a pod's start: the time the container runtime waits on the plugin, run
 * as the runtime runs it (the installed launcher, the plugin tree's own loader, Node, nsenter,
 * iptables), against peers measured in the same run:
 *
 *   tuning      the reference CNI plugins' `tuning` (Go), chained with nothing to change: what
 *               any chained plugin costs
 *   unmeshed    trellis-cni ADD for a pod without the proxy (what every other pod pays)
 *   meshed      trellis-cni ADD for a meshed pod: the capture rules installed and read back in a
 *               fresh network namespace
 *   init        trellis-init's program (bundled) on the tree's Node, as root in a fresh namespace:
 *               the work InitContainer mode does inside the pod, without its container's start
 *
 * Each path BENCH_CALLS times (fresh namespaces are made and removed outside the timing).
 *
 *   node --import tsx bench/cni-plugin.bench.ts      (root; BENCH_CALLS=40)
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { defaultCaptureSettings } from "../capture/capture-settings.ts";
import { initFlags } from "../capture/init.ts";
import {
  CAPTURE_ANNOTATION,
  captureAnnotationValue,
  POD_ANNOTATIONS_CAPABILITY,
} from "../cni/capture-annotation.ts";
import { installTree } from "../cni/installer.ts";
import { CURRENT_TREE, PLUGIN_NAME, TREE_LAYOUT, TREES_DIR } from "../cni/plugin-tree.ts";
import { assembleCniImageRoot, LAUNCHER_IN_IMAGE } from "../hack/cni-image.ts";

const calls = Number(process.env.BENCH_CALLS ?? 40);
const work = mkdtempSync(join(tmpdir(), "trellis-cni-bench-"));
const binDir = join(work, "bin");
const tag = `${process.pid % 100000}`;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

const prevResult = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "eth0" }],
  ips: [{ address: "10.9.0.5/24", interface: 0 }],
};
const config = (annotations: Record<string, string>, type: string) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "bench",
    type,
    prevResult,
    runtimeConfig: { [POD_ANNOTATIONS_CAPABILITY]: annotations },
  });

/** Runs `file` once per fresh namespace; returns the milliseconds of each run. */
function measure(run: (netns: string) => { status: number | null; out: string }): number[] {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const ns = `trellis-cni-bench-${tag}-${i}`;
    execFileSync("ip", ["netns", "add", ns]);
    try {
      const started = process.hrtime.bigint();
      const r = run(`/run/netns/${ns}`);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (r.status !== 0) throw new Error(`run failed (${r.status}): ${r.out}`);
      times.push(ms);
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  }
  return times.sort((a, b) => a - b);
}

const plugin = (file: string, netns: string, input: string) => {
  const r = spawnSync(file, [], {
    input,
    encoding: "utf8",
    env: {
      CNI_COMMAND: "ADD",
      CNI_NETNS: netns,
      CNI_IFNAME: "eth0",
      CNI_CONTAINERID: "bench",
      CNI_PATH: binDir,
    },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

try {
  const source = join(work, "image");
  await assembleCniImageRoot(join(work, "build"), source);
  mkdirSync(binDir, { recursive: true });
  installTree(
    { binDir, confDir: join(work, "conf"), sourceRoot: source, launcher: join(source, LAUNCHER_IN_IMAGE) },
    () => {},
  );
  const trellis = join(binDir, PLUGIN_NAME);
  const tree = join(binDir, TREES_DIR, CURRENT_TREE);
  const meshed = { [CAPTURE_ANNOTATION]: captureAnnotationValue(defaultCaptureSettings()) };
  const initBundle = join(work, "trellis-init.mjs");
  await build({
    entryPoints: [new URL("../capture/init-main.ts", import.meta.url).pathname],
    outfile: initBundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
  });
  const loader = [
    join(tree, TREE_LAYOUT.loader),
    "--inhibit-cache",
    "--library-path",
    TREE_LAYOUT.libraryPath.map((p) => join(tree, p)).join(":"),
  ];
  const rows: Array<[string, number[]]> = [
    ["tuning (peer)", measure((ns) => plugin("/usr/lib/cni/tuning", ns, config({}, "tuning")))],
    ["trellis-cni, unmeshed pod", measure((ns) => plugin(trellis, ns, config({}, PLUGIN_NAME)))],
    ["trellis-cni, meshed pod", measure((ns) => plugin(trellis, ns, config(meshed, PLUGIN_NAME)))],
    [
      "trellis-init in the pod (peer)",
      measure((ns) => {
        const r = spawnSync(
          "nsenter",
          [
            `--net=${ns}`,
            "--",
            ...loader,
            join(tree, TREE_LAYOUT.node),
            initBundle,
            ...initFlags(defaultCaptureSettings()),
            "--ipv6=off",
          ],
          { encoding: "utf8", env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } },
        );
        return { status: r.status, out: `${r.stdout}${r.stderr}` };
      }),
    ],
  ];
  const base = quantile(rows[0]?.[1] ?? [], 0.5);
  process.stdout.write(`CNI ADD as the runtime waits on it, ${calls} calls each (ms)\n`);
  process.stdout.write("| path | p50 | p90 | max | p50 / tuning |\n|---|---|---|---|---|\n");
  for (const [name, t] of rows) {
    const p50 = quantile(t, 0.5);
    process.stdout.write(
      `| ${name} | ${p50.toFixed(1)} | ${quantile(t, 0.9).toFixed(1)} | ${(t.at(-1) ?? 0).toFixed(1)} | ${(p50 / base).toFixed(1)}× |\n`,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
