// The rollout controller: takes a new proxy version to every meshed workload through the plan
// in rollout-plan.ts. It reads pods (only injected ones), workloads and PodDisruptionBudgets
// from caches; it writes the Mesh's status.rollout and status.proxies under its own field
// manager, then one template patch per workload restart (the trellis.dev/proxy-version and
// restarted-at annotations, as `kubectl rollout restart` does with its own), then the Events of
// the transitions that write recorded. Status goes first, conditioned on the Mesh the decision
// was made from (status-write.ts): a decision made on a stale cache is never acted on.
import type { KubernetesObject, V1PodDisruptionBudget } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  type Mesh,
  type MeshSpec,
  type MeshStatus,
  parseRevision,
  revisionAnnotations,
  targetRevision,
  validateMeshSpec,
} from "../../api/index.ts";
import {
  ApiError,
  type Informer,
  type Manager,
  ObjectWriter,
  type ReconcileRequest,
  type ReconcileResult,
} from "../../kube/index.ts";
import { type PodView, RESOURCES, type WorkloadObjectView } from "../resources.ts";
import { sameJson, TransitionWriter } from "../status-write.ts";
import { combine, metricsVerdict, type PrometheusFigures, podVerdict, queryFigures } from "./analysis.ts";
import { planRollout, type RolloutDecision } from "./rollout-plan.ts";
import { proxyStatus } from "./rollout-report.ts";
import {
  type ApprovalDecision,
  decideApproval,
  heldProxyTarget,
  pendingChange,
  rolloutSteps,
} from "./upgrade-approval.ts";
import { type DisruptionBudgetView, disruptionBudgetView, planWorkloads } from "./workload-plan.ts";
import { inventory, type WorkloadKind, type WorkloadObject, type WorkloadView } from "./workloads.ts";

export const ROLLOUT_FIELD_MANAGER = "trellis-operator-rollout";
const ROLLOUT_STATUS_KEYS = ["rollout", "proxies", "upgradePlan"] as const;
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
/**
 * How long a patch sent is assumed applied while the cache does not show it yet. A patch whose
 * answer was lost may or may not have been applied: sending it again with a new restarted-at
 * would restart the workload twice, so the expectation outlives such a failure until the
 * cache has caught up (or this long has passed and the cache shows it was not applied).
 */
const EXPECTATION_TTL_MS = 60_000;
/** A reconcile whose cached Mesh predates this controller's own last status write waits this long. */
const STALE_CACHE_RETRY_MS = 100;

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
  private readonly transitions: TransitionWriter;
  /** Workload key → the version a patch sent asks for, and when it was sent. */
  private readonly expected = new Map<string, { version: string; at: number }>();
  /** Template patches sent, for the scale benchmark and tests. */
  readonly restarts: Array<{ workload: string; version: string; at: number }> = [];

  constructor(
    private readonly manager: Manager,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.writer = new ObjectWriter(manager.client, ROLLOUT_FIELD_MANAGER);
    this.transitions = new TransitionWriter(this.writer);
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
    // A budget that allows a disruption again lets a blocked workload restart.
    controller.watches(this.budgets, () => this.meshes.keys(), { coalesceMs: CACHE_COALESCE_MS });
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
    if (this.transitions.isStale(request.key, mesh)) return { requeueAfterMs: STALE_CACHE_RETRY_MS };
    const checked = validateMeshSpec(mesh.spec);
    if (!checked.ok) return;
    const spec = checked.value;
    // The data-plane revision: the proxy version, and the capture mode once the plugin allows it.
    const target = targetRevision(spec, mesh.status);
    const pods = this.pods.list();
    const found = inventory(pods, this.workloadObjects());
    const views = this.withExpectations(found.workloads);
    const rollout = mesh.status?.rollout;
    const figures = await this.figures(
      spec.upgrade.analysis.prometheusUrl,
      rollout,
      target,
      spec.upgrade.analysis.interval,
      request,
    );
    const now = this.now();
    const budgets = this.budgetViews();
    const approval = this.approval(mesh, spec, views, budgets, now);
    const decision = planRollout({
      spec,
      fleetVersion: mesh.status?.proxies?.version,
      target: approval.holdProxies ? heldProxyTarget(mesh.status, target) : target,
      rollout,
      workloads: views,
      others: found.others,
      budgets,
      analyse: (upgraded, _baseline, version) =>
        combine(podVerdict(upgraded, version), metricsVerdict(figures, spec)),
      now,
    });
    const counted = decision.rollout?.toVersion ?? decision.fleetVersion;
    const settled = decision.rollout?.state === "RolledBack" ? decision.fleetVersion : counted;
    const status: MeshStatus = {
      ...(decision.rollout ? { rollout: decision.rollout } : {}),
      proxies: proxyStatus(pods, decision.workloads, found.others, settled, decision.fleetVersion),
      ...(approval.plan ? { upgradePlan: approval.plan } : {}),
    };
    decision.events.push(...approval.events);
    const throttleMs =
      decision.events.length > 0 ? 0 : this.progressThrottleMs(request.key, mesh.status, status);
    if (throttleMs > 0) {
      await this.restartAll(decision.restart, request);
      return { requeueAfterMs: Math.min(throttleMs, decision.requeueAfterMs ?? throttleMs) };
    }
    const written = await this.transitions.write(request.key, mesh, status, ROLLOUT_STATUS_KEYS);
    if (written === "conflict") {
      request.logger.debug("Mesh changed since it was cached; deciding again");
      return { requeueAfterMs: STALE_CACHE_RETRY_MS };
    }
    if (written === "written") this.lastWrite.set(request.key, Date.now());
    await this.restartAll(decision.restart, request);
    await this.announce(mesh, decision, written === "written", request);
    return decision.requeueAfterMs === undefined ? undefined : { requeueAfterMs: decision.requeueAfterMs };
  }

  /** Events of the transitions this reconcile recorded (none when the status already said so). */
  private async announce(
    mesh: Mesh & KubernetesObject,
    decision: RolloutDecision,
    written: boolean,
    request: ReconcileRequest,
  ): Promise<void> {
    if (!written) {
      if (decision.events.length > 0)
        request.logger.debug({ events: decision.events.map((e) => e.reason) }, "already recorded");
      return;
    }
    for (const e of decision.events) await this.manager.events.event(mesh, e.type, e.reason, e.message);
  }

  /** spec.upgrade.approval Manual: the plan of what is pending, and whether the proxy rollout waits for it. */
  private approval(
    mesh: Mesh,
    spec: MeshSpec,
    workloads: WorkloadView[],
    budgets: DisruptionBudgetView[],
    now: Date,
  ): ApprovalDecision {
    const change = pendingChange(mesh, spec);
    if (spec.upgrade.approval !== "Manual" || (!change.controlPlane && !change.proxies))
      return { plan: undefined, holdProxies: false, events: [] };
    const planned = planWorkloads({
      workloads,
      budgets,
      target: targetRevision(spec, mesh.status),
      onBlocked: spec.upgrade.onBlocked,
      now,
    });
    return decideApproval({
      spec,
      status: mesh.status,
      annotations: mesh.metadata?.annotations,
      change,
      steps: rolloutSteps(spec, planned),
      planned,
      now,
    });
  }

  private budgetViews(): DisruptionBudgetView[] {
    return this.budgets.list().map(disruptionBudgetView);
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
        pendingPods: undefined,
        held: undefined,
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
    // Prometheus tells the proxies apart by the proxy_version label: a capture-mode switch keeps
    // the version, so there is nothing to compare, and the pods' verdict decides alone.
    const version = parseRevision(target).version;
    const baselineVersion = parseRevision(rollout.fromVersion).version;
    if (version === baselineVersion) return undefined;
    try {
      return await queryFigures({ prometheusUrl: url, version, baselineVersion, window });
    } catch (err) {
      // An unreachable Prometheus must not pass a step: the step waits (and fails at its deadline).
      request.logger.warn({ err: String(err) }, "Prometheus query failed");
      return { successRate: 0, p99Ms: undefined, baselineP99Ms: undefined };
    }
  }

  /**
   * A patched workload looks unpatched until the informer sees the change; without this, a
   * reconcile in between would restart it again. Expectations last until the cache catches up
   * (or EXPECTATION_TTL_MS, for a patch that may never have been applied).
   */
  private withExpectations(views: WorkloadView[]): WorkloadView[] {
    const present = new Set(views.map((v) => v.key));
    const now = Date.now();
    for (const [key, e] of this.expected)
      if (!present.has(key) || now - e.at > EXPECTATION_TTL_MS) this.expected.delete(key);
    for (const v of views) {
      const expected = this.expected.get(v.key);
      if (expected === undefined) continue;
      if (v.templateVersion === expected.version) this.expected.delete(v.key);
      else {
        v.templateVersion = expected.version;
        v.restartedAt = new Date(expected.at).toISOString();
        v.rolledOut = false; // the cached status is of the template before the patch
      }
    }
    return views;
  }

  /**
   * Patches the workloads PATCH_CONCURRENCY at a time. Every patch is awaited before returning,
   * even after a failure, so that the next reconcile sees all expectations of this one; the
   * first error is then thrown (the reconcile is retried).
   */
  private async restartAll(
    restarts: Array<{ workload: WorkloadView; version: string }>,
    request: ReconcileRequest,
  ): Promise<void> {
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (next < restarts.length) {
        const { workload, version } = restarts[next++] as (typeof restarts)[number];
        await this.restart(workload, version, request).catch((err: unknown) => errors.push(err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PATCH_CONCURRENCY, restarts.length) }, worker));
    if (errors.length > 0) throw errors[0];
  }

  /**
   * One template patch, as `kubectl rollout restart` does with its annotation. restarted-at is
   * when it was sent: a step's deadline counts from each workload's restart, and a rollback
   * restarts exactly the workloads restarted since the rollout began.
   */
  private async restart(w: WorkloadView, version: string, request: ReconcileRequest): Promise<void> {
    const spec = WORKLOADS[w.kind];
    const at = Date.now();
    const patch = {
      spec: {
        template: {
          metadata: {
            annotations: {
              ...revisionAnnotations(version),
              [ANNOTATIONS.restartedAt]: new Date(at).toISOString(),
            },
          },
        },
      },
    };
    this.expected.set(w.key, { version, at });
    try {
      await this.manager.client.patch(spec, { name: w.name, namespace: w.namespace }, "merge", patch, {
        fieldManager: ROLLOUT_FIELD_MANAGER,
      });
    } catch (err) {
      // The API server answered no: nothing was applied. Otherwise (no answer) it may have been.
      if (err instanceof ApiError) this.expected.delete(w.key);
      throw err;
    }
    this.restarts.push({ workload: w.key, version, at });
    request.logger.info({ workload: w.key, version }, "restarting workload onto proxy version");
  }
}
