// The Mesh's status as a pure function of the decisions made in a reconcile: the control-plane
// plan, the components observed, the identity's readiness. Ready / Progressing / Degraded are
// derived here and only here, so every path tells the same truth.
import type { MeshStatus } from "../../api/index.ts";
import { type Condition, setCondition } from "../../kube/conditions.ts";
import type { ControlPlanePlan, Phase } from "./control-plane-plan.ts";
import type { ComponentObservation } from "./observe.ts";

export interface StatusInput {
  previous: MeshStatus | undefined;
  generation: number;
  plan: ControlPlanePlan;
  components: ComponentObservation[];
  operatorVersion: string;
  /** A reason the mesh cannot be ready regardless of the control plane (e.g. identity not issued yet). */
  blocker?: { reason: string; message: string; degraded: boolean };
  now: Date;
}

const PROGRESSING: ReadonlySet<Phase> = new Set(["Installing", "Upgrading"]);
const DEGRADED: ReadonlySet<Phase> = new Set(["RolledBack", "UpgradeBlocked", "Degraded"]);

export function meshStatus(input: StatusInput): MeshStatus {
  const { plan, generation, now, blocker } = input;
  const ready = plan.phase === "Ready" && blocker === undefined;
  let conditions: Condition[] = (input.previous?.conditions ?? []) as Condition[];
  const set = (type: string, status: boolean, reason: string, message: string) => {
    conditions = setCondition(
      conditions,
      { type, status: status ? "True" : "False", reason, message, observedGeneration: generation },
      now,
    );
  };
  const summary = blocker ?? plan;
  set("Ready", ready, ready ? plan.reason : summary.reason, ready ? plan.message : summary.message);
  const progressing = PROGRESSING.has(plan.phase) || (blocker !== undefined && !blocker.degraded);
  set(
    "Progressing",
    progressing,
    progressing ? summary.reason : "Stable",
    progressing ? summary.message : "no change in progress",
  );
  const degraded = DEGRADED.has(plan.phase) || blocker?.degraded === true;
  set("Degraded", degraded, degraded ? summary.reason : "Healthy", degraded ? summary.message : "no failure");
  const phase =
    blocker && plan.phase === "Ready" ? (blocker.degraded ? "Degraded" : "Installing") : plan.phase;
  return {
    ...input.previous,
    observedGeneration: generation,
    conditions,
    phase,
    version: plan.state.version,
    targetVersion: plan.state.targetVersion,
    operatorVersion: input.operatorVersion,
    controlPlane: {
      ...plan.state,
      components: input.components,
    },
  };
}
