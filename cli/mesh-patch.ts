// The command line's writes to a Mesh: merge patches under their own field manager, each shown
// as the kubectl command that does the same, so nothing is hidden and a GitOps user knows what
// to put in git instead.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Mesh } from "../api/index.ts";
import { type Cluster, TYPES } from "./cluster.ts";

export const CLI_FIELD_MANAGER = "kubectl-trellis";

export async function patchMesh(
  cluster: Cluster,
  name: string,
  patch: Record<string, unknown>,
): Promise<Mesh & KubernetesObject> {
  return cluster.client.patch<Mesh & KubernetesObject>(TYPES.mesh, { name }, "merge", patch, {
    fieldManager: CLI_FIELD_MANAGER,
  });
}

/** The kubectl command that makes the same change. */
export function kubectlEquivalent(name: string, patch: Record<string, unknown>): string {
  return `kubectl patch mesh ${name} --type=merge -p '${JSON.stringify(patch)}'`;
}
