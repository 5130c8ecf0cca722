// `rollout status|pause|resume|abort`: conveniences over the Mesh's own fields — status reads
// status.rollout (with a live view, --watch), pause and resume set spec.upgrade.paused, abort
// sets spec.proxy.version back to the version the rollout started from (the operator then
// restarts the upgraded workloads onto it at once). Each write prints the kubectl command that
// does the same.
import type { Mesh } from "../../api/index.ts";
import type { CommandSpec, Invocation } from "../command-line.ts";
import { kubectlEquivalent, patchMesh } from "../mesh-patch.ts";
import { formatOf, renderData, styleFor } from "../output.ts";
import { MESH_FLAG } from "../upgrade/plan-command.ts";
import { readFleet, readMesh } from "../upgrade/plan-inputs.ts";
import { EXIT } from "../usage-error.ts";
import { isSettled, type RolloutProgress, rolloutProgress } from "./rollout-progress.ts";
import { renderRolloutProgress } from "./rollout-render.ts";

const meshName = (inv: Invocation) => (typeof inv.flags.mesh === "string" ? inv.flags.mesh : undefined);

async function progressNow(inv: Invocation): Promise<RolloutProgress> {
  const cluster = inv.cluster();
  const mesh = await readMesh(cluster, meshName(inv));
  return rolloutProgress(mesh, await readFleet(cluster), new Date());
}

const exitFor = (p: RolloutProgress) =>
  p.state === "RolledBack" || p.state === "Halted" ? EXIT.failed : EXIT.ok;

export const rolloutStatusCommand: CommandSpec = {
  path: ["rollout", "status"],
  summary: "show the proxy rollout: step, workloads done per wave, analysis countdown, the gate's figures",
  description: "Exit status 1 when the rollout rolled back or halted.",
  flags: {
    watch: {
      type: "boolean",
      short: "w",
      description: "follow the rollout until it ends (a live view on a terminal)",
    },
    interval: {
      type: "string",
      value: "SECONDS",
      description: "seconds between refreshes with --watch",
      default: "1",
    },
    ...MESH_FLAG,
  },
  examples: ["rollout status", "rollout status --watch", "rollout status -o json"],
  async run(inv) {
    const format = formatOf(inv.flags);
    const style = styleFor(inv.io, inv.flags);
    const show = (p: RolloutProgress) =>
      format === "table" ? renderRolloutProgress(p, style) : renderData(p, format);
    let progress = await progressNow(inv);
    if (inv.flags.watch !== true || isSettled(progress)) {
      inv.io.out(show(progress));
      return exitFor(progress);
    }
    const everyMs = Math.max(0.2, Number(inv.flags.interval) || 1) * 1000;
    let stop = false;
    void inv.io.interrupted?.().then(() => {
      stop = true;
    });
    const live = inv.io.isTTY && format === "table";
    let shown = "";
    for (;;) {
      const text = show(progress);
      if (live) {
        const lines = shown ? shown.split("\n").length - 1 : 0;
        inv.io.out(`${lines ? `\u001b[${lines}A\u001b[J` : ""}${text}`);
        shown = text;
      } else if (text !== shown) {
        inv.io.out(text);
        shown = text;
      }
      if (isSettled(progress) || stop) return exitFor(progress);
      await new Promise((r) => setTimeout(r, everyMs));
      if (stop) return exitFor(progress);
      progress = await progressNow(inv);
    }
  },
};

async function writeMesh(
  inv: Invocation,
  change: (mesh: Mesh) => Record<string, unknown> | string,
): Promise<number> {
  const cluster = inv.cluster();
  const mesh = await readMesh(cluster, meshName(inv));
  const name = mesh.metadata?.name ?? "";
  const patch = change(mesh);
  if (typeof patch === "string") throw new Error(patch);
  const updated = await patchMesh(cluster, name, patch);
  const format = formatOf(inv.flags);
  if (format !== "table") inv.io.out(renderData({ mesh: name, patch, spec: updated.spec }, format));
  else inv.io.out(`Mesh ${name} patched: ${kubectlEquivalent(name, patch)}\n`);
  return EXIT.ok;
}

const GITOPS_NOTE =
  "If Argo CD or Flux manages this Mesh, make the same change in git, or it will be set back.";

export const rolloutPauseCommand: CommandSpec = {
  path: ["rollout", "pause"],
  summary: "pause the proxy rollout or control-plane upgrade (spec.upgrade.paused: true)",
  description: GITOPS_NOTE,
  flags: { ...MESH_FLAG },
  run: (inv) => writeMesh(inv, () => ({ spec: { upgrade: { paused: true } } })),
};

export const rolloutResumeCommand: CommandSpec = {
  path: ["rollout", "resume"],
  summary: "resume a paused or halted rollout (spec.upgrade.paused: false)",
  description: GITOPS_NOTE,
  flags: { ...MESH_FLAG },
  run: (inv) => writeMesh(inv, () => ({ spec: { upgrade: { paused: false } } })),
};

export const rolloutAbortCommand: CommandSpec = {
  path: ["rollout", "abort"],
  summary: "abort the proxy rollout: set spec.proxy.version back to the version it started from",
  description: `The operator restarts the workloads already upgraded onto that version at once.\n${GITOPS_NOTE}`,
  flags: { ...MESH_FLAG },
  run: (inv) =>
    writeMesh(inv, (mesh) => {
      const r = mesh.status?.rollout;
      if (!r || r.state === "Complete") return "no proxy rollout in progress to abort";
      return { spec: { proxy: { version: r.fromVersion } } };
    }),
};
