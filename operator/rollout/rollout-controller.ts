// The rollout controller: takes a new proxy version to every meshed workload through the plan
// in rollout-plan.ts. It reads pods (only injected ones), workloads and PodDisruptionBudgets
// from caches; it writes one template patch per workload restart (the trellis.dev/proxy-version
// and restarted-at annotations, as `kubectl rollout restart` does with its own) and the Mesh's
// status.rollout and status.proxies, under its own field manager.
import type { KubernetesObject, V1PodDisruptionBudget } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  type Mesh,
  type MeshStatus,
  targetProxyVersion,
  validateMeshSpec,
} from "../../api/index.ts";
import {
  type Informer,
  type Manager,
  ObjectWriter,
  type ReconcileRequest,
  type ReconcileResult,
} from "../../kube/index.ts";
import { type PodView, RESOURCES, type WorkloadObjectView } from "../resources.ts";
import { sameJson, writeStatusIfChanged } from "../status-write.ts";
import { combine, metricsVerdict, type PrometheusFigures, podVerdict, queryFigures } from "./analysis.ts";
import { planRollout } from "./rollout-plan.ts";
import { inventory, type WorkloadKind, type WorkloadObject, type WorkloadView } from "./workloads.ts";

export const ROLLOUT_FIELD_MANAGER = "trellis-operator-rollout";
const ROLLOUT_STATUS_KEYS = ["rollout", "proxies"] as const;
const PROGRESS_WRITE_MS = 5000;
/**
 * Pod and workload events reach the rollout at most this often. Every reconcile reads all pods
 * and workloads (O(pods)); per event, 10,000 restarting pods kept the operator's one thread
 * busy and took CPU from the API server it waits on. Costs at most this much per step.
 */
const CACHE_COALESCE_MS = 500;
/**
 * Template patches in flight at once. One at a time, a wave of 500 workloads took ~80 s of
 * round trips on a loaded API server before the last workload even began to restart.
 */
const PATCH_CONCURRENCY = 16;

const WORKLOADS = {
  Deployment: { apiVersion: "apps/v1", kind: "Deployment", plural: "deployments", namespaced: true },
  StatefulSet: { apiVersion: "apps/v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true },
  DaemonSet: { apiVersion: "apps/v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true },
} as const;

/** The caches of every workload of the cluster, as views (metadata, replicas, template annotations). */
const WORKLOAD_CACHES = {
  Deployment: RESOURCES.anyDeployment,
  StatefulSet: RESOURCES.anyStatefulSet,
  DaemonSet: RESOURCES.anyDaemonSet,
} as const;

export class RolloutController {
  private readonly meshes: Informer<Mesh & KubernetesObject>;
  private readonly pods: Informer<PodView>;
  private readonly workloads = new Map<WorkloadKind, Informer<WorkloadObjectView>>();
  private readonly budgets: Informer<V1PodDisruptionBudget & KubernetesObject>;
  private readonly writer: ObjectWriter;
  private readonly lastWrite = new Map<string, number>();
  private readonly expected = new Map<string, string>();
  /** Template patches sent, for the scale benchmark and tests. */
  readonly restarts: Array<{ workload: string; version: string; at: number }> = [];

  constructor(
    private readonly manager: Manager,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.writer = new ObjectWriter(manager.client, ROLLOUT_FIELD_MANAGER);
    this.meshes = manager.informer(RESOURCES.mesh);
    this.pods = manager.informer(RESOURCES.injectedPod);
    this.budgets = manager.informer(RESOURCES.anyPodDisruptionBudget);
    const controller = manager.controller({
      name: "rollout",
      reconcile: (r) => this.reconcile(r),
      resyncMs: 60_000,
    });
    controller.watches(this.meshes);
    // A rollout reads pods and workloads in bulk; one reconcile per interval sees every change.
    controller.watches(this.pods, () => this.meshes.keys(), { coalesceMs: CACHE_COALESCE_MS });
    for (const [kind, spec] of Object.entries(WORKLOAD_CACHES) as Array<
      [WorkloadKind, (typeof WORKLOAD_CACHES)[WorkloadKind]]
    >) {
      const informer = manager.informer<WorkloadObjectView>(spec);
      this.workloads.set(kind, informer);
      controller.watches(informer, () => this.meshes.keys(), { coalesceMs: CACHE_COALESCE_MS });
    }
  }

  async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
    const mesh = this.meshes.get(request.key);
    if (!mesh || mesh.metadata?.deletionTimestamp) return;
    const checked = validateMeshSpec(mesh.spec);
    if (!checked.ok) return;
    const spec = checked.value;
    const target = targetProxyVersion(spec);
    const pods = this.pods.list();
    const views = this.withExpectations(inventory(pods, this.workloadObjects()));
    const rollout = mesh.status?.rollout;
    const figures = await this.figures(
      spec.upgrade.analysis.prometheusUrl,
      rollout,
      target,
      spec.upgrade.analysis.interval,
      request,
    );
    const decision = planRollout({
      spec,
      fleetVersion: mesh.status?.proxies?.version,
      target,
      rollout,
      workloads: views,
      analyse: (upgraded, _baseline, version) =>
        combine(podVerdict(upgraded, version), metricsVerdict(figures, spec)),
      blocked: (w) => this.disruptionBlocked(w, pods),
      now: this.now(),
    });
    const restartedAt = decision.rollout?.stepStartedAt ?? this.now().toISOString();
    await this.restartAll(decision.restart, restartedAt, request);
    for (const e of decision.events) await this.manager.events.event(mesh, e.type, e.reason, e.message);
    const counted = decision.rollout?.toVersion ?? decision.fleetVersion;
    const updated = pods.filter(
      (p) => p.metadata?.labels?.["trellis.dev/proxy-version"] === counted && !p.metadata?.deletionTimestamp,
    ).length;
    const total = pods.filter((p) => !p.metadata?.deletionTimestamp).length;
    const status: MeshStatus = {
      ...(decision.rollout ? { rollout: decision.rollout } : {}),
      proxies: { total, updated, summary: `${updated}/${total}`, version: decision.fleetVersion },
    };
    const throttleMs = this.progressThrottleMs(request.key, mesh.status, status);
    if (throttleMs > 0)
      return { requeueAfterMs: Math.min(throttleMs, decision.requeueAfterMs ?? throttleMs) };
    if (await writeStatusIfChanged(this.writer, mesh, status, ROLLOUT_STATUS_KEYS))
      this.lastWrite.set(request.key, Date.now());
    return decision.requeueAfterMs === undefined ? undefined : { requeueAfterMs: decision.requeueAfterMs };
  }

  /**
   * Progress counters change with every pod; writing each change would cost writes per pod.
   * A change of counters alone is written at most every PROGRESS_WRITE_MS; a change of step or
   * state at once. Returns how long to wait before writing, or 0 to write now.
   */
  private progressThrottleMs(key: string, current: MeshStatus | undefined, next: MeshStatus): number {
    const shape = (s: MeshStatus | undefined) => ({
      rollout: s?.rollout && {
        ...s.rollout,
        message: undefined,
        updatedWorkloads: undefined,
        totalWorkloads: undefined,
      },
      version: s?.proxies?.version,
    });
    if (!sameJson(shape(current), shape(next))) return 0;
    const since = Date.now() - (this.lastWrite.get(key) ?? 0);
    return Math.max(0, PROGRESS_WRITE_MS - since);
  }

  private workloadObjects(): WorkloadObject[] {
    const out: WorkloadObject[] = [];
    for (const [kind, informer] of this.workloads) for (const o of informer.list()) out.push({ ...o, kind });
    return out;
  }

  private async figures(
    url: string | undefined,
    rollout: MeshStatus["rollout"],
    target: string,
    window: string,
    request: ReconcileRequest,
  ): Promise<PrometheusFigures | undefined> {
    if (
      !url ||
      !rollout ||
      rollout.toVersion !== target ||
      !["Restarting", "Analysing"].includes(rollout.state)
    )
      return undefined;
    try {
      return await queryFigures({
        prometheusUrl: url,
        version: target,
        baselineVersion: rollout.fromVersion,
        window,
      });
    } catch (err) {
      // An unreachable Prometheus must not pass a step: the step waits (and fails at its deadline).
      request.logger.warn({ err: String(err) }, "Prometheus query failed");
      return { successRate: 0, p99Ms: undefined, baselineP99Ms: undefined };
    }
  }

  /** A workload is not restarted while a PodDisruptionBudget selecting its pods allows no disruption. */
  private disruptionBlocked(w: WorkloadView, pods: PodView[]): boolean {
    const budgets = this.budgets.list(w.namespace);
    if (budgets.length === 0) return false;
    const mine = pods.filter((p) => p.metadata?.namespace === w.namespace && p.metadata?.labels);
    return budgets.some((b) => {
      const selector = b.spec?.selector?.matchLabels ?? {};
      const selects = mine.some((p) =>
        Object.entries(selector).every(([k, v]) => p.metadata?.labels?.[k] === v),
      );
      return selects && (b.status?.disruptionsAllowed ?? 0) === 0;
    });
  }

  /**
   * A patched workload looks unpatched until the informer sees the change; without this, a
   * reconcile in between would restart it again. Expectations last until the cache catches up.
   */
  private withExpectations(views: WorkloadView[]): WorkloadView[] {
    const present = new Set(views.map((v) => v.key));
    for (const key of this.expected.keys()) if (!present.has(key)) this.expected.delete(key);
    for (const v of views) {
      const expected = this.expected.get(v.key);
      if (expected === undefined) continue;
      if (v.templateVersion === expected) this.expected.delete(v.key);
      else {
        v.templateVersion = expected;
        v.rolledOut = false; // the cached status is of the template before the patch
      }
    }
    return views;
  }

  /**
   * Patches the workloads PATCH_CONCURRENCY at a time. Every patch is awaited before returning,
   * even after a failure, so that the next reconcile sees all expectations of this one; the
   * first error is then thrown (the reconcile is retried; a repeated patch carries the same
   * restartedAt, so it changes nothing and restarts nothing twice).
   */
  private async restartAll(
    restarts: Array<{ workload: WorkloadView; version: string }>,
    at: string,
    request: ReconcileRequest,
  ): Promise<void> {
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (next < restarts.length) {
        const { workload, version } = restarts[next++] as (typeof restarts)[number];
        await this.restart(workload, version, at, request).catch((err: unknown) => errors.push(err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PATCH_CONCURRENCY, restarts.length) }, worker));
    if (errors.length > 0) throw errors[0];
  }

  private async restart(
    w: WorkloadView,
    version: string,
    at: string,
    request: ReconcileRequest,
  ): Promise<void> {
    const spec = WORKLOADS[w.kind];
    const patch = {
      spec: {
        template: {
          metadata: { annotations: { [ANNOTATIONS.proxyVersion]: version, [ANNOTATIONS.restartedAt]: at } },
        },
      },
    };
    await this.manager.client.patch(spec, { name: w.name, namespace: w.namespace }, "merge", patch, {
      fieldManager: ROLLOUT_FIELD_MANAGER,
    });
    this.expected.set(w.key, version);
    this.restarts.push({ workload: w.key, version, at: Date.now() });
    request.logger.info({ workload: w.key, version }, "restarting workload onto proxy version");
  }
}
