// The meshed pods as the trellis-cni lifecycle sees them: which rely on the plugin (meshed in CNI
// mode: they carry the plugin's annotation), which were refused by their validator (capture not
// in place: the node-start race), and which of those to restart now — a pod with a controller
// (it comes back) on a node whose installer is ready again. A bare pod is only reported: deleting
// it would lose it. Pure.
import { CAPTURE_ANNOTATION } from "../../cni/capture-annotation.ts";
import { VALIDATOR_CONTAINER } from "../../cni/validator.ts";
import type { PodView } from "../resources.ts";
import { CNI_PHASE_LABEL } from "./cni-plan.ts";

export interface RefusedPod {
  namespace: string;
  name: string;
  uid: string;
  node: string | undefined;
  /** It has a controller (ReplicaSet, StatefulSet, ...) that recreates it when deleted. */
  controlled: boolean;
  message: string | undefined;
}

const live = (p: PodView) => !p.metadata?.deletionTimestamp;

/** Pods meshed in CNI mode (their sandbox needs the plugin), not being deleted. */
export function cniPods(pods: PodView[]): PodView[] {
  return pods.filter((p) => live(p) && p.metadata?.annotations?.[CAPTURE_ANNOTATION] !== undefined);
}

/** CNI-mode pods whose validator's last run failed and that are not Ready. */
export function refusedPods(pods: PodView[]): RefusedPod[] {
  const out: RefusedPod[] = [];
  for (const p of cniPods(pods)) {
    if (p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")) continue;
    const validator = p.status?.initContainerStatuses?.find((c) => c.name === VALIDATOR_CONTAINER);
    if (validator?.failed === undefined) continue;
    out.push({
      namespace: p.metadata?.namespace ?? "",
      name: p.metadata?.name ?? "",
      uid: p.metadata?.uid ?? "",
      node: p.spec?.nodeName,
      controlled: p.metadata?.ownerReferences?.some((o) => o.controller) ?? false,
      message: validator.failed.message,
    });
  }
  return out.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}

/** Nodes whose trellis-cni installer pod is Ready in the Install phase. */
export function nodesWithPlugin(installerPods: PodView[]): Set<string> {
  const nodes = new Set<string>();
  for (const p of installerPods) {
    const ready = p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True");
    if (live(p) && ready && p.metadata?.labels?.[CNI_PHASE_LABEL] === "Install" && p.spec?.nodeName)
      nodes.add(p.spec.nodeName);
  }
  return nodes;
}

/** The refused pods to restart now: controlled ones on nodes where the plugin is ready. */
export function podsToRestart(refused: RefusedPod[], readyNodes: Set<string>): RefusedPod[] {
  return refused.filter((p) => p.controlled && p.node !== undefined && readyNodes.has(p.node));
}

/** "demo/web-1 on node-a" for messages. */
export function describeRefused(p: RefusedPod): string {
  return `${p.namespace}/${p.name}${p.node ? ` on ${p.node}` : ""}`;
}
