// The rollout controller: takes a new proxy version to every meshed workload through the plan
// in rollout-plan.ts, and keeps the data plane whole through repair-plan.ts (pods that should
// carry the proxy and do not, proxies outside the skew policy; data-plane.ts). It reads pods
// (with and without a proxy), namespaces, workloads and PodDisruptionBudgets from caches; it
// writes the Mesh's status.rollout, status.repair and status.proxies under its own field
// manager, then one template patch per workload restart (template-patches.ts), then the Events
// of the transitions that write recorded. Status goes first, conditioned on the Mesh the
// decision was made from (status-write.ts): a decision made on a stale cache is never acted on.
import type { KubernetesObject, V1PodDisruptionBudget } from "@kubernetes/client-node";
import {
  type Mesh,
  type MeshSpec,
  type MeshStatus,
  parseRevision,
  targetRevision,
  validateMeshSpec,
} from "../../api/index.ts";
import {
  type Gauge,
  type Informer,
  type Manager,
  ObjectWriter,
  type ReconcileRequest,
  type ReconcileResult,
} from "../../kube/index.ts";
import { type PodView, RESOURCES, type WorkloadObjectView } from "../resources.ts";
import { sameJson, TransitionWriter } from "../status-write.ts";
import { combine, metricsVerdict, type PrometheusFigures, podVerdict, queryFigures } from "./analysis.ts";
import {
  dataPlaneCensus,
  describeGaps,
  gapsByOwner,
  type NamespaceView,
  namespaceView,
} from "./data-plane.ts";
import { InjectorProbe } from "./injector-probe.ts";
import { planRepair } from "./repair-plan.ts";
import { planRollout, rolloutActive } from "./rollout-plan.ts";
import { type GapTotals, proxyStatus } from "./rollout-report.ts";
import type { RolloutEvent } from "./rollout-steps.ts";
import { TemplatePatcher } from "./template-patches.ts";
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
const ROLLOUT_STATUS_KEYS = ["rollout", "repair", "proxies", "upgradePlan"] as const;
const PROGRESS_WRITE_MS = 5000;
/**
 * Pod and workload events reach the rollout at most this often. Every reconcile reads all pods
 * and workloads (O(pods)); per event, 10,000 restarting pods kept the operator's one thread
 * busy and took CPU from the API server it waits on. Costs at most this much per step.
 */
const CACHE_COALESCE_MS = 500;
/** A reconcile whose cached Mesh predates this controller's own last status write waits this long. */
const STALE_CACHE_RETRY_MS = 100;

/** The caches of every workload of the cluster, as views (metadata, replicas, template annotations). */
const WORKLOAD_CACHES = {
  Deployment: RESOURCES.anyDeployment,
  StatefulSet: RESOURCES.anyStatefulSet,
  DaemonSet: RESOURCES.anyDaemonSet,
} as const;

export interface RolloutControllerOptions {
  /** Development only: the injector's webhook URL, probed before a repair restarts anything. */
  injectorUrl?: string | undefined;
  now?: () => Date;
}

export class RolloutController {
  private readonly meshes: Informer<Mesh & KubernetesObject>;
  private readonly pods: Informer<PodView>;
  private readonly uninjected: Informer<PodView>;
  private readonly namespaces: Informer<KubernetesObject>;
  private readonly workloads = new Map<WorkloadKind, Informer<WorkloadObjectView>>();
  private readonly budgets: Informer<V1PodDisruptionBudget & KubernetesObject>;
  private readonly webhooks: Informer<KubernetesObject>;
  private readonly writer: ObjectWriter;
  private readonly lastWrite = new Map<string, number>();
  private readonly transitions: TransitionWriter;
  readonly patcher: TemplatePatcher;
  private readonly injector: InjectorProbe;
  private readonly now: () => Date;
  private readonly missingGauge: Gauge;
  private readonly skewGauge: Gauge;

  constructor(
    private readonly manager: Manager,
    options: RolloutControllerOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.writer = new ObjectWriter(manager.client, ROLLOUT_FIELD_MANAGER);
    this.transitions = new TransitionWriter(this.writer);
    this.patcher = new TemplatePatcher(manager, ROLLOUT_FIELD_MANAGER);
    this.injector = new InjectorProbe(options.injectorUrl);
    this.missingGauge = manager.metrics.registry.gauge(
      "trellis_mesh_pods_without_proxy",
      "Running pods that should carry the proxy and do not, per Mesh.",
    );
    this.skewGauge = manager.metrics.registry.gauge(
      "trellis_mesh_proxies_out_of_skew",
      "Proxies whose version is outside the skew policy of the control plane, per Mesh.",
    );
    this.meshes = manager.informer(RESOURCES.mesh);
    this.pods = manager.informer(RESOURCES.injectedPod);
    this.uninjected = manager.informer(RESOURCES.uninjectedPod);
    this.namespaces = manager.informer(RESOURCES.anyNamespace);
    this.budgets = manager.informer(RESOURCES.anyPodDisruptionBudget);
    this.webhooks = manager.informer(RESOURCES.mutatingWebhook);
    const controller = manager.controller({
      name: "rollout",
      reconcile: (r) => this.reconcile(r),
      resyncMs: 60_000,
    });
    controller.watches(this.meshes);
    // A rollout reads pods and workloads in bulk; one reconcile per interval sees every change.
    for (const source of [
      this.pods,
      this.uninjected,
      this.namespaces,
      this.webhooks,
    ] as Informer<KubernetesObject>[])
      controller.watches(source, () => this.meshes.keys(), { coalesceMs: CACHE_COALESCE_MS });
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
    const now = this.now();
    const pods = this.pods.list();
    const census = this.census(mesh, spec, pods);
    const found = inventory(pods, this.workloadObjects(), [...census.missing, ...census.outOfSkew]);
    const views = this.patcher.withExpectations(found.workloads);
    const figures = await this.figures(
      spec.upgrade.analysis.prometheusUrl,
      mesh.status?.rollout,
      target,
      spec.upgrade.analysis.interval,
      request,
    );
    const budgets = this.budgetViews();
    const approval = this.approval(mesh, spec, views, budgets, now);
    // While a new proxy version waits for approval, the fleet's version is the one kept.
    const proxyTarget = approval.holdProxies ? heldProxyTarget(mesh.status, target) : target;
    const common = { spec, workloads: views, budgets, now };
    const rollout = planRollout({
      ...common,
      fleetVersion: mesh.status?.proxies?.version,
      target: proxyTarget,
      rollout: mesh.status?.rollout,
      others: found.others,
      analyse: (upgraded, _baseline, version) =>
        combine(podVerdict(upgraded, version), metricsVerdict(figures, spec)),
    });
    const repair = planRepair({
      ...common,
      fleetVersion: rollout.fleetVersion,
      controlPlaneVersion: mesh.status?.controlPlane?.version,
      repair: mesh.status?.repair,
      rolloutActive: rolloutActive(rollout.rollout, proxyTarget, rollout.fleetVersion),
      rolloutTarget: proxyTarget,
      gapOthers: found.gapOthers,
      injectorReady: await this.injector.ready(
        mesh,
        this.webhooks.list().some((w) => w.metadata?.labels?.["trellis.dev/mesh"] === mesh.metadata?.name),
      ),
      analyse: (upgraded, _baseline, version) => podVerdict(upgraded, version),
    });
    const gaps: GapTotals = {
      missing: census.missing.length,
      outOfSkew: census.outOfSkew.length,
      owners: gapsByOwner(census),
    };
    this.missingGauge.set({ mesh: request.key }, gaps.missing);
    this.skewGauge.set({ mesh: request.key }, gaps.outOfSkew);
    // Counted against the rollout's target; after a rollback, against the fleet's version it went back to.
    const counted = rollout.rollout?.toVersion ?? rollout.fleetVersion;
    const settled = rollout.rollout?.state === "RolledBack" ? rollout.fleetVersion : counted;
    const status: MeshStatus = {
      ...(rollout.rollout ? { rollout: rollout.rollout } : {}),
      ...(repair.rollout ? { repair: repair.rollout } : {}),
      proxies: proxyStatus(pods, rollout.workloads, found.others, settled, rollout.fleetVersion, gaps),
      ...(approval.plan ? { upgradePlan: approval.plan } : {}),
    };
    const events = [
      ...rollout.events,
      ...approval.events,
      ...repair.events,
      ...gapEvents(mesh.status?.proxies, gaps, spec),
    ];
    // A workload the rollout's own restarts (a revert, a rollback retried) already cover is not patched twice.
    const byRollout = new Set(rollout.restart.map((r) => r.workload.key));
    const restarts = [...rollout.restart, ...repair.restart.filter((r) => !byRollout.has(r.workload.key))];
    const throttleMs = events.length > 0 ? 0 : this.progressThrottleMs(request.key, mesh.status, status);
    if (throttleMs > 0) {
      await this.patcher.restartAll(restarts, request);
      const requeue = Math.min(rollout.requeueAfterMs ?? throttleMs, repair.requeueAfterMs ?? throttleMs);
      return { requeueAfterMs: Math.min(throttleMs, requeue) };
    }
    const written = await this.transitions.write(request.key, mesh, status, ROLLOUT_STATUS_KEYS);
    if (written === "conflict") {
      request.logger.debug("Mesh changed since it was cached; deciding again");
      return { requeueAfterMs: STALE_CACHE_RETRY_MS };
    }
    if (written === "written") this.lastWrite.set(request.key, Date.now());
    await this.patcher.restartAll(restarts, request);
    await this.announce(mesh, events, written === "written", request);
    const waits = [rollout.requeueAfterMs, repair.requeueAfterMs].filter((w): w is number => w !== undefined);
    return waits.length > 0 ? { requeueAfterMs: Math.min(...waits) } : undefined;
  }

  /** Pods that should carry the proxy and do not, and proxies out of skew (data-plane.ts). */
  private census(mesh: Mesh, spec: MeshSpec, injected: PodView[]) {
    const byName = new Map<string, NamespaceView>();
    for (const ns of this.namespaces.list()) byName.set(ns.metadata?.name ?? "", namespaceView(ns));
    return dataPlaneCensus({
      injected,
      uninjected: this.uninjected.list(),
      namespace: (name) => byName.get(name),
      injection: spec.injection,
      controlPlaneVersion: mesh.status?.controlPlane?.version,
    });
  }

  /** Events of the transitions this reconcile recorded (none when the status already said so). */
  private async announce(
    mesh: Mesh & KubernetesObject,
    events: RolloutEvent[],
    written: boolean,
    request: ReconcileRequest,
  ): Promise<void> {
    if (!written) {
      if (events.length > 0)
        request.logger.debug({ events: events.map((e) => e.reason) }, "already recorded");
      return;
    }
    for (const e of events) await this.manager.events.event(mesh, e.type, e.reason, e.message);
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
    const pass = (p: MeshStatus["rollout"]) =>
      p && {
        ...p,
        message: undefined,
        updatedWorkloads: undefined,
        totalWorkloads: undefined,
        pendingPods: undefined,
        held: undefined,
      };
    const shape = (s: MeshStatus | undefined) => ({
      rollout: pass(s?.rollout),
      repair: pass(s?.repair),
      version: s?.proxies?.version,
      // Whether the data plane is whole (the condition reads it); the counts may lag.
      complete: !s?.proxies?.missing && !s?.proxies?.outOfSkew,
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
}

/**
 * A Warning when the set of pods missing a proxy or out of skew grows, against the persisted
 * counts: when the data plane stops being whole, and each time the set at least doubles. (Per
 * pod, a thousand pods admitted without a proxy in a minute would be a thousand Events and
 * status writes.)
 */
function gapEvents(previous: MeshStatus["proxies"], gaps: GapTotals, spec: MeshSpec): RolloutEvent[] {
  const before = (previous?.missing ?? 0) + (previous?.outOfSkew ?? 0);
  const now = gaps.missing + gaps.outOfSkew;
  if (now === 0 || now < 2 * before) return [];
  const then =
    spec.injection.repair === "Restart"
      ? "their workloads are restarted in canaried steps (spec.injection.repair: Restart)"
      : "nothing is restarted (spec.injection.repair: Report)";
  return [
    {
      type: "Warning",
      reason: "DataPlaneIncomplete",
      message: `${describeGaps(gaps.owners, gaps)}; ${then}`,
    },
  ];
}
