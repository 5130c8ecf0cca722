// The Mesh controller: reads the Mesh and everything Trellis owns for it from the informer
// caches, plans the control plane (control-plane-plan.ts), renders it (render.ts and
// identity-objects.ts), makes the cluster match (object-sync.ts), and writes status and Events.
// Deleting a Mesh runs mesh-removal.ts behind a finalizer.
import type { KubernetesObject, V1Deployment, V1Pod, V1Secret } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  type Certificate,
  CONTROL_PLANE_NAMESPACE,
  FINALIZER,
  type Mesh,
  type MeshSpec,
  validateMeshSpec,
} from "../../api/index.ts";
import {
  addFinalizer,
  type Informer,
  isBeingDeleted,
  isConflict,
  isNotFound,
  type Manager,
  type ReconcileRequest,
  type ReconcileResult,
  setCondition,
} from "../../kube/index.ts";
import { syncObjects } from "../object-sync.ts";
import { type PodView, RESOURCES, type ResourceName } from "../resources.ts";
import { holdControlPlane } from "../rollout/upgrade-approval.ts";
import { TransitionWriter, writeStatusIfChanged } from "../status-write.ts";
import { CNI_NAME, renderCni } from "./cni-objects.ts";
import { type CniDaemonSetView, planCni } from "./cni-plan.ts";
import {
  cniPods,
  describeRefused,
  nodesWithPlugin,
  podsToRestart,
  type RefusedPod,
  refusedPods,
} from "./cni-pods.ts";
import { type ControlPlaneState, planControlPlane } from "./control-plane-plan.ts";
import { type IdentityCaches, planIdentity } from "./mesh-identity.ts";
import { removeMesh } from "./mesh-removal.ts";
import {
  approvalBlocker,
  dataPlaneCondition,
  MESH_STATUS_KEYS,
  meshOwnedStatus,
  meshStatus,
  pickBlocker,
  repairBlocker,
  rolloutBlocker,
} from "./mesh-status.ts";
import { observeComponents, versionHealth } from "./observe.ts";
import { renderControlPlane } from "./render.ts";

export interface MeshControllerOptions {
  operatorVersion: string;
  /** Development only: the API server calls the injector at this URL. */
  injectorUrl?: string | undefined;
  now?: () => Date;
}

/** Kinds the Mesh controller renders and prunes. */
export const OWNED_KINDS: ResourceName[] = [
  "namespace",
  "serviceAccount",
  "clusterRole",
  "clusterRoleBinding",
  "role",
  "roleBinding",
  "deployment",
  "service",
  "podDisruptionBudget",
  "configMap",
  "mutatingWebhook",
  "daemonSet",
  "certificate",
  // only the copy of a user-provided trust anchor carries the mesh label
  "ownedSecret",
];

type Obj = KubernetesObject & { spec?: unknown; status?: unknown };

/** A reconcile that would decide on a stale cache, or lost a write to a newer Mesh, retries this soon. */
const STALE_CACHE_RETRY_MS = 100;

const USER_SECRET = { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true };

export class MeshController {
  private readonly meshes: Informer<Mesh & KubernetesObject>;
  private readonly owned = new Map<ResourceName, Informer<Obj>>();
  private readonly secrets: Informer<V1Secret & KubernetesObject>;
  private readonly pods: Informer<V1Pod & KubernetesObject>;
  private readonly namespaces: Informer<KubernetesObject>;
  private readonly cniInstallers: Informer<PodView>;
  /** Pods deleted by the CNI repair, until the cache shows them gone (a lagging cache must not delete twice). */
  private readonly restarted = new Set<string>();
  private readonly now: () => Date;
  private readonly transitions: TransitionWriter;

  constructor(
    private readonly manager: Manager,
    private readonly options: MeshControllerOptions,
  ) {
    this.now = options.now ?? (() => new Date());
    this.transitions = new TransitionWriter(manager.writer);
    this.meshes = manager.informer(RESOURCES.mesh);
    this.secrets = manager.informer(RESOURCES.ownedSecret);
    this.pods = manager.informer(RESOURCES.injectedPod);
    this.namespaces = manager.informer(RESOURCES.anyNamespace);
    this.cniInstallers = manager.informer(RESOURCES.cniInstallerPod);
    const controller = manager.controller({
      name: "mesh",
      reconcile: (r) => this.reconcile(r),
      resyncMs: 5 * 60_000,
    });
    controller.watches(this.meshes);
    const toMesh = (o: KubernetesObject) => {
      const name = o.metadata?.labels?.["trellis.dev/mesh"];
      return name ? [name] : [];
    };
    for (const kind of OWNED_KINDS) {
      const informer = manager.informer<Obj>(RESOURCES[kind]);
      this.owned.set(kind, informer);
      controller.watches(informer, toMesh);
    }
    // Proxy reports and opted-in namespaces feed the rotation and the trust-bundle ConfigMaps.
    // Pod events are coalesced: during a proxy rollout thousands of pods change every minute.
    controller.watches(this.pods, () => this.meshes.keys(), { coalesceMs: 2000 });
    controller.watches(this.namespaces, () => this.meshes.keys());
    controller.watches(this.cniInstallers, () => this.meshes.keys());
    controller.watches(this.secrets, (s) =>
      s.metadata?.namespace === CONTROL_PLANE_NAMESPACE ? this.meshes.keys() : [],
    );
  }

  /** Everything this Mesh owns, from the caches. */
  ownedObjects(meshName: string): Obj[] {
    const out: Obj[] = [];
    for (const informer of this.owned.values()) {
      for (const o of informer.list()) if (o.metadata?.labels?.["trellis.dev/mesh"] === meshName) out.push(o);
    }
    return out;
  }

  async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
    const cached = this.meshes.get(request.key);
    if (!cached) return;
    // Deciding on a Mesh older than our own last status write would announce its transitions twice.
    if (this.transitions.isStale(request.key, cached)) return { requeueAfterMs: STALE_CACHE_RETRY_MS };
    if (isBeingDeleted(cached))
      return removeMesh(this.manager, cached, this.ownedObjects(cached.metadata?.name ?? ""), request.logger);
    const mesh = await addFinalizer(this.manager.writer, cached, FINALIZER);
    const generation = mesh.metadata?.generation ?? 0;
    const checked = validateMeshSpec(mesh.spec);
    if (!checked.ok) return this.reportInvalid(mesh, generation, checked.errors.join("; "));
    const spec = checked.value;
    const now = this.now();
    const state: ControlPlaneState = mesh.status?.controlPlane ?? {};
    const deployments = (this.owned.get("deployment")?.list() ?? []) as V1Deployment[];
    const previousReason = mesh.status?.conditions?.find((c) => c.type === "Ready")?.reason;
    // spec.upgrade.approval Manual: the running version stays until the plan covering the new one is approved.
    const held = holdControlPlane(mesh, spec);
    const planned = held ? { ...spec, version: state.version ?? spec.version } : spec;
    const plan = planControlPlane({
      spec: planned,
      state,
      health: (v) => versionHealth(deployments, v),
      now,
      ...(previousReason ? { previousReason } : {}),
    });
    const userAnchor = await this.readExternalAnchor(spec);
    const identity = planIdentity(mesh, spec, this.identityCaches(userAnchor), now);
    const capture = this.planCapture(mesh, spec);
    const desired = [
      ...renderControlPlane({
        mesh: { name: mesh.metadata?.name ?? "", uid: mesh.metadata?.uid ?? "", spec },
        operatorVersion: this.options.operatorVersion,
        versions: plan.versions,
        trustBundlePem: identity.bundlePem,
        injectorCaBundle: Buffer.from(identity.bundlePem).toString("base64"),
        ...(this.options.injectorUrl ? { injectorUrl: this.options.injectorUrl } : {}),
      }),
      ...renderCni({
        mesh: { name: mesh.metadata?.name ?? "", uid: mesh.metadata?.uid ?? "", spec },
        version: plan.versions[0] ?? spec.version,
        phase: capture.plan.phase,
      }),
      ...identity.objects,
    ];
    const sync = await syncObjects({
      desired,
      live: {
        get: (ref) => this.liveObject(ref),
        owned: () => this.ownedObjects(mesh.metadata?.name ?? ""),
      },
      writer: this.manager.writer,
      ownerUid: mesh.metadata?.uid ?? "",
    });
    if (sync.applied.length + sync.deleted.length > 0) {
      request.logger.info(
        { applied: sync.applied.length, deleted: sync.deleted.length, versions: plan.versions },
        "control plane synced",
      );
    }
    await this.restartUncapturedPods(mesh, capture.refused, request);
    const components = plan.versions.flatMap((v) => observeComponents(deployments, v));
    const cniProgress = capture.plan.progress;
    const blocker = pickBlocker(
      identity.blocker,
      rolloutBlocker(mesh.status?.rollout),
      repairBlocker(mesh.status?.repair),
      approvalBlocker(mesh.status?.upgradePlan),
      cniProgress && { ...cniProgress, degraded: false, phase: "Progressing", keepsReady: true },
    );
    const dataPlane = dataPlaneCondition(mesh.status?.proxies, mesh.status?.repair, spec.injection.repair);
    const status = meshStatus({
      previous: mesh.status,
      generation,
      plan,
      components,
      operatorVersion: this.options.operatorVersion,
      trustAnchor: identity.rotation.status,
      capture: capture.plan.status,
      ...(blocker ? { blocker } : {}),
      dataPlane,
      now,
    });
    // Status first, on the precondition that the Mesh is the one decided on; the Events of the
    // transitions it records follow only a successful write (status-write.ts).
    const written = await this.transitions.write(request.key, mesh, status, MESH_STATUS_KEYS);
    if (written === "conflict") return { requeueAfterMs: STALE_CACHE_RETRY_MS };
    if (written === "written")
      for (const e of [...plan.events, ...identity.rotation.events])
        await this.manager.events.event(mesh, e.type, e.reason, e.message);
    const waits = [plan.requeueAfterMs, identity.rotation.requeueAfterMs].filter(
      (w): w is number => w !== undefined,
    );
    return waits.length > 0 ? { requeueAfterMs: Math.min(...waits) } : undefined;
  }

  /** The injected pods as the cache holds them (RESOURCES.injectedPod reduces them to views). */
  private podViews(): PodView[] {
    return this.pods.list() as unknown as PodView[];
  }

  /** The trellis-cni plan from the caches: the live DaemonSet, the CNI-mode pods, the refused ones. */
  private planCapture(mesh: Mesh & KubernetesObject, spec: MeshSpec) {
    const pods = this.podViews();
    const refused = refusedPods(pods).filter((p) => !this.restarted.has(p.uid));
    const plan = planCni({
      specMode: spec.proxy.capture.mode,
      fleetMode: mesh.status?.capture?.mode,
      daemonSet: this.owned.get("daemonSet")?.get(`${CONTROL_PLANE_NAMESPACE}/${CNI_NAME}`) as
        | CniDaemonSetView
        | undefined,
      cniPods: cniPods(pods).length,
      refused: { count: refused.length, examples: refused.slice(0, 3).map(describeRefused) },
    });
    return { plan, refused };
  }

  /**
   * Restarts the pods their validator refused once the plugin is ready on their node: each is
   * deleted (only that pod: its uid is a precondition) and its controller makes a new one, whose
   * network the plugin sets up.
   */
  private async restartUncapturedPods(
    mesh: Mesh & KubernetesObject,
    refused: RefusedPod[],
    request: ReconcileRequest,
  ): Promise<void> {
    const present = new Set(this.podViews().map((p) => p.metadata?.uid ?? ""));
    for (const uid of this.restarted) if (!present.has(uid)) this.restarted.delete(uid);
    for (const pod of podsToRestart(refused, nodesWithPlugin(this.cniInstallers.list()))) {
      try {
        await this.manager.client.request({
          method: "DELETE",
          path: `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}`,
          body: { apiVersion: "v1", kind: "DeleteOptions", preconditions: { uid: pod.uid } },
        });
      } catch (err) {
        if (!isNotFound(err) && !isConflict(err)) throw err;
      }
      this.restarted.add(pod.uid);
      request.logger.info({ pod: describeRefused(pod) }, "restarted a pod that started before trellis-cni");
      await this.manager.events.event(
        mesh,
        "Normal",
        "RestartedUncapturedPod",
        `Deleted ${describeRefused(pod)} (its controller recreates it): it started before trellis-cni was ready on its node, and its validator refused it`,
      );
    }
  }

  /**
   * The user's anchor Secret, read directly (it lives in any namespace and carries no Trellis
   * label, so no informer holds it); undefined when there is none. Other errors are transient.
   */
  private async readExternalAnchor(spec: MeshSpec): Promise<V1Secret | undefined> {
    const ref = spec.identity.trustAnchor.secretRef;
    if (spec.identity.trustAnchor.source !== "Secret" || !ref) return undefined;
    try {
      return await this.manager.client.get<V1Secret & KubernetesObject>(USER_SECRET, ref.name, ref.namespace);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private identityCaches(userAnchor: V1Secret | undefined): IdentityCaches {
    const certs = this.owned.get("certificate");
    return {
      externalAnchorSecret: () => userAnchor,
      certificate: (name) => certs?.get(`${CONTROL_PLANE_NAMESPACE}/${name}`) as Certificate | undefined,
      secret: (name) => this.secrets.get(`${CONTROL_PLANE_NAMESPACE}/${name}`),
      injectedPods: () => this.pods.list(),
      meshedNamespaces: () => {
        const names = new Set(this.pods.list().map((p) => p.metadata?.namespace ?? ""));
        for (const ns of this.namespaces.list()) {
          if (ns.metadata?.annotations?.[ANNOTATIONS.inject] === "enabled") names.add(ns.metadata.name ?? "");
        }
        names.delete("");
        names.delete(CONTROL_PLANE_NAMESPACE);
        return [...names].sort();
      },
    };
  }

  private liveObject(ref: {
    apiVersion: string;
    kind: string;
    name: string;
    namespace?: string;
  }): Obj | undefined {
    for (const [kind, informer] of this.owned) {
      const r = RESOURCES[kind];
      if (r.kind === ref.kind && r.apiVersion === ref.apiVersion) {
        return informer.get(ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name);
      }
    }
    return undefined;
  }

  private async reportInvalid(
    mesh: Mesh & KubernetesObject,
    generation: number,
    message: string,
  ): Promise<ReconcileResult> {
    let conditions = mesh.status?.conditions ?? [];
    const set = (type: string, status: boolean, reason: string, msg: string) => {
      conditions = setCondition(conditions, {
        type,
        status: status ? "True" : "False",
        reason,
        message: msg,
        observedGeneration: generation,
      });
    };
    set("Ready", false, "InvalidSpec", message);
    set("Degraded", true, "InvalidSpec", message);
    set("Progressing", false, "InvalidSpec", "nothing to do until the spec is fixed");
    const written = await writeStatusIfChanged(
      this.manager.writer,
      mesh,
      { ...meshOwnedStatus(mesh.status), observedGeneration: generation, conditions },
      MESH_STATUS_KEYS,
    );
    if (written) await this.manager.events.event(mesh, "Warning", "InvalidSpec", message);
    return;
  }
}
