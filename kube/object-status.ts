// Pure helpers about an object's generation and its status' observedGeneration: whether the
// status describes the current spec, and the generation to write. Owns nothing else; conditions
// are in conditions.ts.
import type { KubernetesObject } from "@kubernetes/client-node";

interface WithObservedGeneration {
  status?: { observedGeneration?: number };
}

export function generationOf(obj: KubernetesObject): number | undefined {
  return obj.metadata?.generation;
}

/** Whether the object's status was written for its current spec. */
export function isStatusCurrent(obj: KubernetesObject & WithObservedGeneration): boolean {
  const generation = obj.metadata?.generation;
  return generation !== undefined && obj.status?.observedGeneration === generation;
}

/** `status` with `observedGeneration` set to the object's generation (when it has one). */
export function withObservedGeneration<S extends object>(
  obj: KubernetesObject,
  status: S,
): S & { observedGeneration?: number } {
  const generation = obj.metadata?.generation;
  return generation === undefined ? status : { ...status, observedGeneration: generation };
}
