// `upgrade approve [--plan ID]`: approves the upgrade plan a Mesh with spec.upgrade.approval
// Manual waits on (status.upgradePlan), by the annotation the operator reads:
// trellis.dev/approve-upgrade=<id>. With --plan, only if that is still the plan waiting (the
// plan a person reviewed); a plan that changed since needs a new look.
import { ANNOTATIONS } from "../../api/index.ts";
import type { CommandSpec } from "../command-line.ts";
import { kubectlEquivalent, patchMesh } from "../mesh-patch.ts";
import { formatOf, renderData } from "../output.ts";
import { EXIT } from "../usage-error.ts";
import { MESH_FLAG } from "./plan-command.ts";
import { readMesh } from "./plan-inputs.ts";

export const approveCommand: CommandSpec = {
  path: ["upgrade", "approve"],
  summary: "approve the upgrade a Mesh with spec.upgrade.approval: Manual waits on",
  description:
    "Writes the annotation trellis.dev/approve-upgrade=<status.upgradePlan.id> on the Mesh. A GitOps user can\ncommit that annotation instead. Exit status 1 when no plan waits, or --plan names another one.",
  flags: {
    plan: {
      type: "string",
      value: "ID",
      description: "approve only if this is the plan waiting (as upgrade plan showed it)",
    },
    ...MESH_FLAG,
  },
  examples: ["upgrade approve", "upgrade approve --plan 3f9c2a1b7e4d"],
  async run(inv) {
    const cluster = inv.cluster();
    const mesh = await readMesh(cluster, typeof inv.flags.mesh === "string" ? inv.flags.mesh : undefined);
    const name = mesh.metadata?.name ?? "";
    const plan = mesh.status?.upgradePlan;
    if (plan?.state !== "AwaitingApproval") {
      const why =
        mesh.spec.upgrade?.approval !== "Manual"
          ? "its spec.upgrade.approval is Automatic"
          : plan
            ? `plan ${plan.id} is already approved`
            : "it asks for no new version";
      throw new Error(`Mesh ${name} has no upgrade waiting for approval: ${why}`);
    }
    const wanted = inv.flags.plan;
    if (typeof wanted === "string" && wanted !== plan.id)
      throw new Error(
        `the plan waiting is ${plan.id}, not ${wanted}: it changed since (${plan.summary}); review it with kubectl trellis upgrade plan`,
      );
    const patch = { metadata: { annotations: { [ANNOTATIONS.approveUpgrade]: plan.id } } };
    await patchMesh(cluster, name, patch);
    const format = formatOf(inv.flags);
    if (format !== "table") inv.io.out(renderData({ mesh: name, approved: plan }, format));
    else
      inv.io.out(
        `Mesh ${name}: upgrade plan ${plan.id} approved: ${plan.summary}\n  (${kubectlEquivalent(name, patch)})\n`,
      );
    return EXIT.ok;
  },
};
