// Why a rollout step fails or waits, as sentences a person can act on: a pod of the new version
// in a certain failure (pod-failures.ts), restarts not ready by the deadline (counted from each
// workload's own restart, so time spent waiting for a budget is not counted against it), and
// workloads blocked by a PodDisruptionBudget. Pure; the plan decides what follows.
import { counted, parseDuration } from "../../api/index.ts";
import { describeFailure, pastGrace } from "./pod-failures.ts";
import { describeWorkload, type PlannedWorkload } from "./workload-plan.ts";
import { describeProgress, type WorkloadView } from "./workloads.ts";

/** A pod of the new version in a certain failure past its grace: the step cannot succeed. */
export function certainFailure(upgraded: WorkloadView[], version: string, now: Date): string | undefined {
  const failures = upgraded.flatMap((w) => (w.failures ?? []).filter((f) => f.version === version));
  const certain = failures.filter((f) => pastGrace(f, now));
  const first = certain[0];
  if (!first) return undefined;
  const more = certain.length > 1 ? ` (and ${counted(certain.length - 1, "more pod")})` : "";
  return `${describeFailure(first)}${more}`;
}

/** In-flight restarts not done within stepDeadline of their restart (or of the step's start). */
export function lateRestarts(
  inFlight: WorkloadView[],
  version: string,
  stepDeadline: string,
  stepStartedAt: string | undefined,
  now: Date,
): string | undefined {
  const deadline = parseDuration(stepDeadline);
  const stepStart = stepStartedAt ?? now.toISOString();
  const late = inFlight.filter((w) => {
    const since = [w.restartedAt ?? stepStart, stepStart].sort().at(-1) as string;
    return now.getTime() - Date.parse(since) > deadline;
  });
  if (late.length === 0) return undefined;
  const names = late.slice(0, 3).map((w) => `${describeWorkload(w)} (${describeProgress(w, version)})`);
  const more = late.length > 3 ? ` and ${late.length - 3} more` : "";
  return `${counted(late.length, "workload")} not ready ${stepDeadline} after their restart: ${names.join(", ")}${more}`;
}

export function blockedText(blocked: PlannedWorkload[]): string {
  const names = blocked.slice(0, 3).map((p) => {
    const why = p.action.action === "Blocked" ? p.action.message : "";
    return `${describeWorkload(p.workload)}: ${why}`;
  });
  const more = blocked.length > 3 ? `; and ${blocked.length - 3} more` : "";
  return `${counted(blocked.length, "workload")} blocked by a PodDisruptionBudget (${names.join("; ")}${more})`;
}
