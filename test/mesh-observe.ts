// What tests read back from a cluster about a Mesh's rollouts: the Events recorded about the Mesh
// (with how often each was recorded) and how many times each workload's pod template changed.
import type { LocalCluster } from "./cluster/local-cluster.ts";

/** The Events about Mesh objects with `reason`: each Event's count (it grows when one repeats) and message. */
export function meshEvents(cluster: LocalCluster, reason: string): Array<{ count: number; message: string }> {
  return cluster
    .kubectl([
      "get",
      "events",
      "--field-selector",
      `involvedObject.kind=Mesh,reason=${reason}`,
      "-o",
      "jsonpath={range .items[*]}{.count} {.message}{'\\n'}{end}",
    ])
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => ({
      count: Number(line.slice(0, line.indexOf(" "))),
      message: line.slice(line.indexOf(" ") + 1),
    }));
}

/**
 * Pod-template revisions per workload of `namespace`, keyed "Kind/name": ReplicaSets of a
 * Deployment, ControllerRevisions of a StatefulSet or DaemonSet. A restart adds one.
 */
export function templateRevisions(cluster: LocalCluster, namespace: string): Record<string, number> {
  const out = cluster.kubectl([
    "-n",
    namespace,
    "get",
    "replicasets,controllerrevisions",
    "-o",
    "jsonpath={range .items[*]}{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}{'\\n'}{end}",
  ]);
  const counts: Record<string, number> = {};
  for (const line of out.trim().split("\n").filter(Boolean)) counts[line] = (counts[line] ?? 0) + 1;
  return counts;
}
