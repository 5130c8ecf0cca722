// What the trellis-cni DaemonSet does, and which capture mode new pods get, as one pure decision
// over the Mesh's spec, the live DaemonSet and the pods that rely on the plugin:
//
//   spec CNI            → Install. New pods get CNI once the DaemonSet has been rolled out and
//                         ready on every node, and keep getting it (a node that joins later is
//                         the validator's race, not a reason to flip the whole fleet back).
//   spec InitContainer  → new pods get trellis-init at once; the plugin stays installed while a
//                         pod meshed in CNI mode remains (its sandbox could be recreated), then
//                         Uninstall (every node restores its configuration), then Absent (the
//                         DaemonSet is deleted only after that: deleting it first would leave the
//                         plugin chained on every node).
// Owns the phase, the fleet's mode and the CNI part of the Mesh status. Pure.
import { type CaptureMode, counted, type MeshStatus } from "../../api/index.ts";

export type CniPhase = "Install" | "Uninstall" | "Absent";

/** The phase a rendered DaemonSet carries (label), so that a plan can read what is live. */
export const CNI_PHASE_LABEL = "trellis.dev/cni-phase";

/** What the plan reads of the live DaemonSet. */
export interface CniDaemonSetView {
  metadata?: { generation?: number; labels?: Record<string, string>; deletionTimestamp?: Date | string };
  status?: {
    observedGeneration?: number;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberReady?: number;
  };
}

export interface CniPlanInput {
  specMode: CaptureMode;
  /** The fleet's mode so far (status.capture.mode). */
  fleetMode: CaptureMode | undefined;
  daemonSet: CniDaemonSetView | undefined;
  /** Pods meshed in CNI mode, not being deleted. */
  cniPods: number;
  /** Meshed pods whose validator refused them, with a few names for the message. */
  refused: { count: number; examples: string[] };
}

export interface CniPlan {
  phase: CniPhase;
  fleetMode: CaptureMode;
  status: NonNullable<MeshStatus["capture"]>;
  /** The work in progress to show in the Mesh's conditions, when there is some. */
  progress?: { reason: string; message: string };
}

/** The live DaemonSet's phase, its nodes, and whether it runs its latest spec ready everywhere. */
export function observeDaemonSet(ds: CniDaemonSetView | undefined): {
  phase: CniPhase;
  nodes: number;
  ready: number;
  settled: boolean;
} {
  if (!ds) return { phase: "Absent", nodes: 0, ready: 0, settled: true };
  const s = ds.status ?? {};
  const nodes = s.desiredNumberScheduled ?? 0;
  const ready = s.numberReady ?? 0;
  const current = (s.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1);
  const phase = ds.metadata?.labels?.[CNI_PHASE_LABEL] === "Uninstall" ? "Uninstall" : "Install";
  return {
    phase,
    nodes,
    ready,
    settled: current && (s.updatedNumberScheduled ?? 0) >= nodes && ready >= nodes,
  };
}

export function planCni(input: CniPlanInput): CniPlan {
  const live = observeDaemonSet(input.daemonSet);
  const counts = { nodes: live.nodes, readyNodes: live.ready };
  const refused = input.refused.count > 0 ? { refusedPods: input.refused.count } : {};
  const refusedMessage =
    input.refused.count > 0
      ? `; ${counted(input.refused.count, "meshed pod")} refused by their validator (capture not in place): ${input.refused.examples.join(", ")}`
      : "";
  if (input.specMode === "CNI") {
    const installedEverywhere = live.phase === "Install" && live.settled && live.nodes > 0;
    const fleetMode: CaptureMode = input.fleetMode === "CNI" || installedEverywhere ? "CNI" : "InitContainer";
    const message =
      fleetMode === "CNI"
        ? `trellis-cni installed on ${live.ready}/${live.nodes} nodes${refusedMessage}`
        : `installing trellis-cni: ready on ${live.ready}/${live.nodes} nodes; new pods keep trellis-init until it is ready on all`;
    return {
      phase: "Install",
      fleetMode,
      status: { mode: fleetMode, cni: { phase: "Install", ...counts, ...refused, message } },
      ...(fleetMode === "CNI" ? {} : { progress: { reason: "InstallingCniPlugin", message } }),
    };
  }
  if (live.phase === "Absent" && input.daemonSet === undefined)
    return { phase: "Absent", fleetMode: "InitContainer", status: { mode: "InitContainer" } };
  if (input.cniPods > 0) {
    const message = `trellis-cni stays installed while ${counted(input.cniPods, "pod")} meshed in CNI mode ${input.cniPods === 1 ? "remains" : "remain"}`;
    return {
      phase: "Install",
      fleetMode: "InitContainer",
      status: { mode: "InitContainer", cni: { phase: "Install", ...counts, ...refused, message } },
      progress: { reason: "RemovingCniPlugin", message },
    };
  }
  if (live.phase === "Uninstall" && live.settled) {
    return { phase: "Absent", fleetMode: "InitContainer", status: { mode: "InitContainer" } };
  }
  const message = `removing trellis-cni: configuration restored on ${live.phase === "Uninstall" ? live.ready : 0}/${live.nodes} nodes`;
  return {
    phase: "Uninstall",
    fleetMode: "InitContainer",
    status: { mode: "InitContainer", cni: { phase: "Uninstall", ...counts, message } },
    progress: { reason: "RemovingCniPlugin", message },
  };
}
