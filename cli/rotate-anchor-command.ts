// `rotate-anchor`: asks the operator to rotate the mesh's trust anchor now, by the annotation
// the operator documents (trellis.dev/rotate-trust-anchor, any new value). Refused when the
// anchor is the user's own (a Secret) or a rotation is already under way.
import { ANNOTATIONS } from "../api/index.ts";
import type { CommandSpec } from "./command-line.ts";
import { kubectlEquivalent, patchMesh } from "./mesh-patch.ts";
import { formatOf, renderData } from "./output.ts";
import { MESH_FLAG } from "./upgrade/plan-command.ts";
import { readMesh } from "./upgrade/plan-inputs.ts";
import { EXIT } from "./usage-error.ts";

export const rotateAnchorCommand: CommandSpec = {
  path: ["rotate-anchor"],
  summary: "rotate the mesh's trust anchor now (annotation trellis.dev/rotate-trust-anchor)",
  description:
    "The operator publishes a new anchor beside the old, re-signs the issuer, waits until every proxy\ntrusts and uses it, then removes the old one. Follow it with: kubectl get mesh -w (column ANCHOR with -o wide).",
  flags: { ...MESH_FLAG },
  async run(inv) {
    const cluster = inv.cluster();
    const mesh = await readMesh(cluster, typeof inv.flags.mesh === "string" ? inv.flags.mesh : undefined);
    const name = mesh.metadata?.name ?? "";
    const anchor = mesh.spec.identity?.trustAnchor;
    if (anchor?.source === "Secret") {
      inv.io.err(
        `${inv.prog} rotate-anchor: Mesh ${name}'s anchor is yours (Secret ${anchor.secretRef?.namespace}/${anchor.secretRef?.name}); Trellis does not rotate it — update that Secret (docs/identity.md)\n`,
      );
      return EXIT.failed;
    }
    const phase = mesh.status?.trustAnchor?.rotationPhase;
    if (phase && phase !== "Stable") {
      inv.io.err(`${inv.prog} rotate-anchor: Mesh ${name} is already rotating its anchor (phase ${phase})\n`);
      return EXIT.failed;
    }
    const patch = {
      metadata: { annotations: { [ANNOTATIONS.rotateTrustAnchor]: new Date().toISOString() } },
    };
    await patchMesh(cluster, name, patch);
    const format = formatOf(inv.flags);
    if (format !== "table") inv.io.out(renderData({ mesh: name, patch }, format));
    else inv.io.out(`Mesh ${name}: rotation requested (${kubectlEquivalent(name, patch)})\n`);
    return EXIT.ok;
  },
};
