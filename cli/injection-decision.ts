// Whether the injector would give a pod a proxy, and why not: the injector's own decision
// (decideInjection), asked without a real configuration, since its yes or no and its reason do
// not depend on one. The command line never decides this a second way.
import type { V1Pod } from "@kubernetes/client-node";
import { decideInjection, type InjectionConfig } from "../controlplane/injector/inject.ts";

const PROBE_CONFIG: InjectionConfig = {
  proxyImage: "probe",
  initImage: "probe",
  captureMode: "InitContainer",
  cniImage: "probe",
  defaultProxyVersion: "0.0.0",
  logLevel: "info",
  resources: {},
  trustDomain: "cluster.local",
};

export function injectionDecision(
  pod: V1Pod,
  namespaceAnnotations: Record<string, string>,
): { inject: true } | { inject: false; reason: string } {
  const d = decideInjection(pod, namespaceAnnotations, PROBE_CONFIG);
  return d.inject ? { inject: true } : { inject: false, reason: d.reason };
}
