// What the cluster shows about the control plane: per version and component, whether its
// Deployment is rolled out and available. Pure over the Deployments read from the cache.
import type { V1Deployment } from "@kubernetes/client-node";
import { LABELS } from "../../api/index.ts";
import { COMPONENTS } from "./components.ts";
import type { VersionHealth } from "./control-plane-plan.ts";
import { revisionName } from "./revision.ts";

export interface ComponentObservation {
  name: string;
  revision: string;
  ready: boolean;
  readyReplicas: number;
  replicas: number;
}

export function observeComponents(deployments: V1Deployment[], version: string): ComponentObservation[] {
  const revision = revisionName(version);
  return COMPONENTS.map((c) => {
    const d = deployments.find(
      (x) =>
        x.metadata?.labels?.[LABELS.component] === c.name &&
        x.metadata?.labels?.[LABELS.revision] === revision,
    );
    const replicas = d?.spec?.replicas ?? 1;
    const available = d?.status?.availableReplicas ?? 0;
    const rolledOut =
      d !== undefined &&
      (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 1) &&
      (d.status?.updatedReplicas ?? 0) >= replicas;
    return {
      name: c.name,
      revision,
      ready: rolledOut && available >= replicas,
      readyReplicas: available,
      replicas,
    };
  });
}

export function versionHealth(deployments: V1Deployment[], version: string): VersionHealth {
  const components = observeComponents(deployments, version);
  const waiting = components.filter((c) => !c.ready);
  if (waiting.length === 0) return { healthy: true };
  return {
    healthy: false,
    detail: waiting.map((c) => `${c.name} ${c.readyReplicas}/${c.replicas} available`).join(", "),
  };
}
