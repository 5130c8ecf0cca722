// `upgrade plan`: the plan the operator would run for a new proxy version, mesh version or Mesh
// file, from the live cluster, changing nothing. Exit status 1 when the operator would refuse it.
import type { CommandSpec } from "../command-line.ts";
import { formatOf, renderData, styleFor } from "../output.ts";
import { EXIT } from "../usage-error.ts";
import { desiredSpec, readMesh, readPlanInputs } from "./plan-inputs.ts";
import { renderPlan } from "./plan-render.ts";
import { planUpgrade } from "./upgrade-plan.ts";

export const MESH_FLAG = {
  mesh: { type: "string", value: "NAME", description: 'the Mesh (default "default", or the only one)' },
} as const;

export const planCommand: CommandSpec = {
  path: ["upgrade", "plan"],
  summary:
    "show what an upgrade would do — skew verdict, steps, workloads per wave, gates, duration — changing nothing",
  description:
    "Computed by the operator's own planning and skew functions over the live cluster.\nExit status 1 when the operator would refuse the change.",
  flags: {
    "proxy-version": {
      type: "string",
      value: "VERSION",
      description: "plan a proxy rollout to this version",
    },
    version: {
      type: "string",
      value: "VERSION",
      description: "plan a mesh (control plane and proxy) upgrade",
    },
    filename: {
      type: "string",
      short: "f",
      value: "FILE",
      description: "plan the change a Mesh file would make (a GitOps commit)",
    },
    ...MESH_FLAG,
  },
  examples: [
    "upgrade plan --proxy-version 1.1.0",
    "upgrade plan --version 1.2.0",
    "upgrade plan -f mesh.yaml -o json",
  ],
  async run(inv) {
    const cluster = inv.cluster();
    const mesh = await readMesh(cluster, typeof inv.flags.mesh === "string" ? inv.flags.mesh : undefined);
    const { spec } = desiredSpec(mesh, inv.flags);
    const plan = planUpgrade(await readPlanInputs(cluster, mesh, spec, new Date()));
    const format = formatOf(inv.flags);
    inv.io.out(format === "table" ? renderPlan(plan, styleFor(inv.io, inv.flags)) : renderData(plan, format));
    return plan.allowed ? EXIT.ok : EXIT.failed;
  },
};
