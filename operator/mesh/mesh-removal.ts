// Removing a Mesh behind its finalizer, in a safe order: first the webhook (so no pod creation
// waits on an injector that is going away), then the workloads, then the trellis-cni DaemonSet —
// switched to its uninstall phase first, and deleted only once every node has its CNI
// configuration restored (deleting it at once would leave the plugin chained on every node) —
// then what they used, the namespace last. One group per reconcile, with progress in status,
// until nothing is left.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { FINALIZER, LABELS, type Mesh, validateMeshSpec } from "../../api/index.ts";
import { type Manager, type ReconcileResult, removeFinalizer, setCondition } from "../../kube/index.ts";
import { deleteIgnoringMissing, isOwnedBy, withHash } from "../object-sync.ts";
import { writeStatusIfChanged } from "../status-write.ts";
import { renderCni } from "./cni-objects.ts";
import { type CniDaemonSetView, observeDaemonSet } from "./cni-plan.ts";
import { MESH_STATUS_KEYS, meshOwnedStatus } from "./mesh-status.ts";

export const REMOVAL_ORDER: string[][] = [
  ["MutatingWebhookConfiguration"],
  ["Deployment"],
  ["DaemonSet"],
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
  let waiting: string | undefined;
  for (const o of group) {
    if (o.metadata?.deletionTimestamp) continue;
    if (o.kind === "DaemonSet") {
      waiting = await uninstallCniFirst(manager, mesh, o as CniDaemonSetView & KubernetesObject);
      if (waiting) continue;
    }
    await deleteIgnoringMissing(manager.writer, o);
  }
  const message = `removing ${REMOVAL_ORDER[step]?.join(", ")} (step ${step + 1} of ${REMOVAL_ORDER.length}, ${remaining.length} objects left)${waiting ? `: ${waiting}` : ""}`;
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

/**
 * Puts the trellis-cni DaemonSet in its uninstall phase and says what is awaited; undefined once
 * every node has restored its configuration (the DaemonSet may then be deleted).
 */
async function uninstallCniFirst(
  manager: Manager,
  mesh: Mesh & KubernetesObject,
  ds: CniDaemonSetView & KubernetesObject,
): Promise<string | undefined> {
  const live = observeDaemonSet(ds);
  if (live.phase === "Uninstall" && live.settled) return undefined;
  if (live.phase !== "Uninstall") {
    const checked = validateMeshSpec(mesh.spec);
    if (!checked.ok) return undefined; // nothing to render the uninstall phase from: delete it
    const objects = renderCni({
      mesh: { name: mesh.metadata?.name ?? "", uid: mesh.metadata?.uid ?? "", spec: checked.value },
      version: ds.metadata?.labels?.[LABELS.version] ?? checked.value.version,
      phase: "Uninstall",
    });
    for (const o of objects) await manager.writer.apply(withHash(o));
  }
  return `restoring the nodes' CNI configuration (${live.phase === "Uninstall" ? live.ready : 0}/${live.nodes} nodes)`;
}
