// Removing a Mesh behind its finalizer, in a safe order: first the webhook (so no pod creation
// waits on an injector that is going away), then the workloads, then what they used, the
// namespace last. One group per reconcile, with progress in status, until nothing is left.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { FINALIZER, type Mesh } from "../../api/index.ts";
import { type Manager, type ReconcileResult, removeFinalizer, setCondition } from "../../kube/index.ts";
import { deleteIgnoringMissing, isOwnedBy } from "../object-sync.ts";
import { writeStatusIfChanged } from "../status-write.ts";
import { MESH_STATUS_KEYS, meshOwnedStatus } from "./mesh-status.ts";

export const REMOVAL_ORDER: string[][] = [
  ["MutatingWebhookConfiguration"],
  ["Deployment"],
  ["Service", "PodDisruptionBudget"],
  ["Certificate", "ConfigMap", "Secret"],
  ["RoleBinding", "ClusterRoleBinding", "Role", "ClusterRole", "ServiceAccount"],
  ["Namespace"],
];

export async function removeMesh(
  manager: Manager,
  mesh: Mesh & KubernetesObject,
  owned: KubernetesObject[],
  logger: Logger,
): Promise<ReconcileResult> {
  const uid = mesh.metadata?.uid ?? "";
  const remaining = owned.filter((o) => isOwnedBy(o, uid));
  if (remaining.length === 0) {
    if (mesh.metadata?.finalizers?.includes(FINALIZER)) {
      await manager.events.event(mesh, "Normal", "Removed", "Every object of the mesh was removed");
      await removeFinalizer(manager.writer, mesh, FINALIZER);
      logger.info("mesh removed; finalizer released");
    }
    return;
  }
  const step = REMOVAL_ORDER.findIndex((kinds) => remaining.some((o) => kinds.includes(o.kind ?? "")));
  const group = remaining.filter((o) => REMOVAL_ORDER[step]?.includes(o.kind ?? ""));
  for (const o of group) if (!o.metadata?.deletionTimestamp) await deleteIgnoringMissing(manager.writer, o);
  const message = `removing ${REMOVAL_ORDER[step]?.join(", ")} (step ${step + 1} of ${REMOVAL_ORDER.length}, ${remaining.length} objects left)`;
  const generation = mesh.metadata?.generation ?? 0;
  const conditions = setCondition(mesh.status?.conditions, {
    type: "Ready",
    status: "False",
    reason: "Deleting",
    message,
    observedGeneration: generation,
  });
  const status = { ...meshOwnedStatus(mesh.status), phase: "Deleting", conditions };
  if (await writeStatusIfChanged(manager.writer, mesh, status, MESH_STATUS_KEYS)) {
    logger.info({ step: step + 1, left: remaining.length }, "removing mesh");
  }
  return { requeueAfterMs: 1000 };
}
