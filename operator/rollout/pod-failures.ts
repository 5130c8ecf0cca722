// Certain failures: pod states that no amount of waiting fixes, so a rollout step that meets one
// in a pod it restarted fails at once instead of at its deadline, and a workload already in one
// before its restart is not restarted (the restart could not succeed and would fail its step).
// The kubelet's waiting reasons ErrImagePull / ImagePullBackOff / ErrImageNeverPull /
// InvalidImageName (the image is not there), CrashLoopBackOff, CreateContainerConfigError (a
// missing ConfigMap/Secret key), and a container restarted while it never passed its startup
// probe. A short grace (FAILURE_GRACE_MS, counted from when the kubelet took the pod on) lets the kubelet's
// first retry clear a transient pull error. Pure.
import type { ContainerStateView, PodView } from "../resources.ts";

export const CERTAIN_FAILURE_REASONS: ReadonlySet<string> = new Set([
  "ErrImagePull",
  "ImagePullBackOff",
  "ErrImageNeverPull",
  "InvalidImageName",
  "CrashLoopBackOff",
  "CreateContainerConfigError",
]);

/** A pod is judged failed only once it is this old: the kubelet retries a pull after 10 s, then 20 s. */
export const FAILURE_GRACE_MS = 30_000;

export interface PodFailure {
  /** namespace/name */
  pod: string;
  container: string;
  reason: string;
  message?: string;
  /** When the kubelet took the pod on (RFC 3339): the failure is at most this old. */
  since?: string;
}

function containerFailure(c: ContainerStateView): Omit<PodFailure, "pod" | "since"> | undefined {
  if (c.waiting && CERTAIN_FAILURE_REASONS.has(c.waiting.reason))
    return {
      container: c.name,
      reason: c.waiting.reason,
      ...(c.waiting.message ? { message: c.waiting.message } : {}),
    };
  if (c.state === "running" && c.started === false && c.restartCount > 0)
    return {
      container: c.name,
      reason: "StartupProbeFailing",
      message: `restarted ${c.restartCount} times without passing its startup probe`,
    };
  return undefined;
}

/** The first certain failure of a pod's containers (init containers first), if any. */
export function podFailure(pod: PodView): PodFailure | undefined {
  const containers = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const c of containers) {
    const f = containerFailure(c);
    if (f)
      return {
        pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`,
        ...f,
        ...(pod.status?.startTime ? { since: pod.status.startTime } : {}),
      };
  }
  return undefined;
}

/** The failure has lasted past the grace (a pod without a start time is judged at once). */
export function pastGrace(f: PodFailure, now: Date): boolean {
  return f.since === undefined || now.getTime() - Date.parse(f.since) >= FAILURE_GRACE_MS;
}

/** "pod shop/api-5d8f-x: container trellis-proxy ImagePullBackOff (Back-off pulling image ...)". */
export function describeFailure(f: PodFailure): string {
  return `pod ${f.pod}: container ${f.container} ${f.reason}${f.message ? ` (${f.message})` : ""}`;
}
