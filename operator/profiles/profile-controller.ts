// The ServiceProfile controller: accepts or refuses each profile's routes and says so in status
// (Ready, routeCount). The destination service streams accepted routes to proxies; a refused
// profile is reported as InvalidSpec naming the field, once, without retrying.
import type { KubernetesObject } from "@kubernetes/client-node";
import {
  type ServiceProfile,
  type ServiceProfileStatus,
  validateServiceProfileSpec,
} from "../../api/index.ts";
import { type Informer, type Manager, type ReconcileRequest, setCondition } from "../../kube/index.ts";
import { RESOURCES } from "../resources.ts";
import { writeStatusIfChanged } from "../status-write.ts";
import { checkServiceProfileSpec } from "./route-checks.ts";

export class ProfileController {
  private readonly profiles: Informer<ServiceProfile & KubernetesObject>;

  constructor(private readonly manager: Manager) {
    this.profiles = manager.informer(RESOURCES.serviceProfile);
    manager
      .controller({ name: "serviceprofile", reconcile: (r) => this.reconcile(r) })
      .watches(this.profiles);
  }

  async reconcile(request: ReconcileRequest): Promise<void> {
    const profile = this.profiles.get(request.key);
    if (!profile || profile.metadata?.deletionTimestamp) return;
    const checked = validateServiceProfileSpec(profile.spec);
    const problems = checked.ok ? checkServiceProfileSpec(checked.value) : checked.errors;
    const generation = profile.metadata?.generation ?? 0;
    const ok = problems.length === 0;
    const routeCount = checked.value.routes?.length ?? 0;
    const status: ServiceProfileStatus = {
      observedGeneration: generation,
      routeCount,
      conditions: setCondition(profile.status?.conditions, {
        type: "Ready",
        status: ok ? "True" : "False",
        reason: ok ? "Accepted" : "InvalidSpec",
        message: ok ? `${routeCount} routes accepted` : problems.join("; "),
        observedGeneration: generation,
      }),
    };
    if (!(await writeStatusIfChanged(this.manager.writer, profile, status))) return;
    request.logger.info({ accepted: ok, routeCount }, ok ? "routes accepted" : "routes refused");
    if (!ok) await this.manager.events.event(profile, "Warning", "InvalidSpec", problems.join("; "));
  }
}
