// Whether a pod is meant to carry the proxy, as far as annotations say: the one rule the
// injector applies at admission and the operator applies when it counts pods that run without
// a proxy (and repairs them). A pod's trellis.dev/inject annotation wins (disabled opts out,
// enabled opts in); otherwise its namespace's decides. The webhook's own selectors
// (spec.injection.namespaceSelector, podSelector, the excluded system namespaces) and the
// pod-level refusals (hostNetwork, a name the proxy needs) come on top, each where it applies.
import { ANNOTATIONS, CONTROL_PLANE_NAMESPACE } from "./group.ts";

export type InjectionIntent = { meshed: true } | { meshed: false; reason: string };

/** Namespaces the injector's webhook is never called for (render.ts excludes them). */
export const NEVER_MESHED_NAMESPACES: readonly string[] = ["kube-system", CONTROL_PLANE_NAMESPACE];

export function injectionIntent(
  podAnnotations: Record<string, string> | undefined,
  namespaceAnnotations: Record<string, string> | undefined,
): InjectionIntent {
  const pod = podAnnotations?.[ANNOTATIONS.inject];
  if (pod === "disabled") return { meshed: false, reason: "pod opted out (trellis.dev/inject: disabled)" };
  if (pod === "enabled" || namespaceAnnotations?.[ANNOTATIONS.inject] === "enabled") return { meshed: true };
  return { meshed: false, reason: "neither pod nor namespace has trellis.dev/inject: enabled" };
}
