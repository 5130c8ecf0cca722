// The Mesh kind: the whole mesh (version, control plane, proxy, injection, identity, upgrade
// policy). Cluster-scoped; normally one, named "default". Defaults live here, in the schema the
// CRD publishes, so the API server fills them and a GitOps tool sees no drift.
import { type Static, Type } from "@sinclair/typebox";
import {
  Conditions,
  Duration,
  type KindDefinition,
  LabelSelector,
  type ObjectMeta,
  Resources,
  SecretReference,
  SemVer,
  Toleration,
} from "./common-schema.ts";
import { DEFAULT_IMAGE_REGISTRY } from "./image-references.ts";

const ControlPlaneSpec = Type.Object(
  {
    replicas: Type.Integer({
      minimum: 1,
      maximum: 7,
      default: 1,
      description: "Replicas of each component.",
    }),
    highAvailability: Type.Boolean({
      default: false,
      description: "Spread replicas across nodes (anti-affinity) and protect them with PodDisruptionBudgets.",
    }),
    imageRegistry: Type.String({
      default: DEFAULT_IMAGE_REGISTRY,
      maxLength: 253,
      description: "Registry and path prefix of the control-plane and proxy images.",
    }),
    resources: Resources("Resources of each control-plane container.", {
      requests: { cpu: "100m", memory: "64Mi" },
      limits: { memory: "256Mi" },
    }),
    nodeSelector: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: 63 }), {
        description: "Nodes the control-plane pods may run on (pod nodeSelector).",
      }),
    ),
    tolerations: Type.Optional(
      Type.Array(Toleration, { maxItems: 32, description: "Taints the control-plane pods tolerate." }),
    ),
  },
  {
    default: {},
    "x-kubernetes-validations": [
      {
        rule: "!self.highAvailability || self.replicas >= 2",
        message: "highAvailability needs replicas >= 2",
      },
    ],
  },
);

export const CAPTURE_MODES = ["InitContainer", "CNI"] as const;
export type CaptureMode = (typeof CAPTURE_MODES)[number];

/** Where the node's container runtime keeps its CNI plugins and their configuration. */
const CniSpec = Type.Object(
  {
    binDir: Type.String({
      default: "/opt/cni/bin",
      maxLength: 1024,
      pattern: "^/[^,:]*$",
      description: "The nodes' CNI binary directory (containerd: plugins.cri.cni.bin_dir).",
    }),
    confDir: Type.String({
      default: "/etc/cni/net.d",
      maxLength: 1024,
      pattern: "^/[^,:]*$",
      description: "The nodes' CNI configuration directory (containerd: plugins.cri.cni.conf_dir).",
    }),
  },
  { default: {} },
);

const CaptureSpec = Type.Object(
  {
    mode: Type.Union(
      CAPTURE_MODES.map((m) => Type.Literal(m)),
      {
        default: "InitContainer",
        description:
          "How a meshed pod's traffic is redirected to its proxy. InitContainer: a trellis-init container with NET_ADMIN and NET_RAW in every pod. CNI: the trellis-cni plugin, installed on every node by a DaemonSet, programs the pod's network namespace when the runtime creates it, so meshed pods hold no capability (restricted Pod Security Standard). Changing it rolls the data plane like a proxy upgrade.",
      },
    ),
    cni: CniSpec,
  },
  { default: {} },
);

const ProxySpec = Type.Object(
  {
    image: Type.Optional(
      Type.String({ maxLength: 253, description: "Proxy image repository; default <imageRegistry>/proxy." }),
    ),
    version: Type.Optional(
      SemVer("Proxy version; default the mesh version. Changing it starts a proxy rollout."),
    ),
    logLevel: Type.Union(
      [
        Type.Literal("trace"),
        Type.Literal("debug"),
        Type.Literal("info"),
        Type.Literal("warn"),
        Type.Literal("error"),
      ],
      { default: "info" },
    ),
    resources: Resources("Resources of each injected proxy.", {
      requests: { cpu: "10m", memory: "20Mi" },
      limits: { memory: "128Mi" },
    }),
    capture: CaptureSpec,
    unmeshedClients: Type.Union([Type.Literal("Allow"), Type.Literal("Deny")], {
      default: "Allow",
      description:
        "Whether clients outside the mesh (plaintext: an ingress controller, a scraper, the kubelet's probes) may reach meshed pods. Allow, like Linkerd's default all-unauthenticated; Deny admits only meshed clients. Meshed clients always get mutual TLS either way.",
    }),
  },
  { default: {} },
);

const InjectionSpec = Type.Object(
  {
    namespaceSelector: Type.Optional(
      LabelSelector(
        "Namespaces whose pods get the proxy, besides those annotated trellis.dev/inject=enabled.",
      ),
    ),
    podSelector: Type.Optional(LabelSelector("Only pods matching this selector get the proxy.")),
    repair: Type.Union([Type.Literal("Restart"), Type.Literal("Report")], {
      default: "Restart",
      description:
        "Pods that should carry the proxy but run without one (or with one outside the skew policy): Restart restarts the workloads that own them in canaried, health-gated steps (never Jobs, CronJob or bare pods); Report only counts and warns.",
    }),
  },
  { default: {} },
);

const TrustAnchorSource = Type.Object(
  {
    source: Type.Union([Type.Literal("Generated"), Type.Literal("Secret")], {
      default: "Generated",
      description:
        "Generated: Trellis creates and rotates the anchor. Secret: bring your own (tls.crt, tls.key).",
    }),
    secretRef: Type.Optional(SecretReference),
  },
  {
    default: {},
    "x-kubernetes-validations": [
      { rule: "self.source != 'Secret' || has(self.secretRef)", message: "source Secret needs secretRef" },
    ],
  },
);

const RotationSpec = Type.Object(
  {
    automatic: Type.Boolean({
      default: true,
      description: "Rotate the trust anchor automatically before it expires.",
    }),
    before: Duration("Start rotating this long before the anchor expires.", "720h"),
  },
  { default: {} },
);

const IdentitySpec = Type.Object(
  {
    trustDomain: Type.String({
      default: "cluster.local",
      maxLength: 253,
      pattern: "^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$",
      description: "SPIFFE trust domain: identities are spiffe://<trustDomain>/ns/<ns>/sa/<sa>.",
    }),
    trustAnchor: TrustAnchorSource,
    anchorLifetime: Duration("Lifetime of a generated trust anchor.", "8760h"),
    issuerLifetime: Duration("Lifetime of the issuer (intermediate CA).", "720h"),
    leafLifetime: Duration("Lifetime of workload certificates.", "24h"),
    rotation: RotationSpec,
  },
  {
    default: {},
    "x-kubernetes-validations": [
      {
        rule: "duration(self.leafLifetime) < duration(self.issuerLifetime) && duration(self.issuerLifetime) <= duration(self.anchorLifetime)",
        message: "lifetimes must satisfy leafLifetime < issuerLifetime <= anchorLifetime",
      },
      {
        rule: "duration(self.rotation.before) < duration(self.anchorLifetime)",
        message: "rotation.before must be shorter than anchorLifetime",
      },
    ],
  },
);

const AnalysisSpec = Type.Object(
  {
    interval: Duration("How long each step is observed before the next one starts.", "30s"),
    minSuccessRate: Type.Number({
      minimum: 0,
      maximum: 1,
      default: 0.99,
      description: "Lowest success rate (non-5xx / all) of upgraded workloads.",
    }),
    maxLatencyP99Ratio: Type.Number({
      minimum: 1,
      default: 1.5,
      description: "Highest p99 latency of upgraded workloads relative to not-yet-upgraded ones.",
    }),
    prometheusUrl: Type.Optional(
      Type.String({ maxLength: 2048, description: "Prometheus to query for success rate and latency." }),
    ),
  },
  { default: {} },
);

const UpgradeSpec = Type.Object(
  {
    strategy: Type.Union([Type.Literal("Canary"), Type.Literal("AllAtOnce")], { default: "Canary" }),
    canary: Type.Object(
      {
        percent: Type.Integer({
          minimum: 1,
          maximum: 100,
          default: 5,
          description: "Share of workloads in the canary.",
        }),
        selector: Type.Optional(
          LabelSelector("Workloads with these labels form the canary instead of a percentage."),
        ),
      },
      { default: {} },
    ),
    waves: Type.Array(Type.Integer({ minimum: 1, maximum: 100 }), {
      default: [10, 25, 50, 100],
      minItems: 1,
      maxItems: 20,
      description: "Cumulative percentages of workloads upgraded after the canary; the last must be 100.",
    }),
    maxConcurrentRestarts: Type.Integer({ minimum: 1, maximum: 1000, default: 25 }),
    analysis: AnalysisSpec,
    onFailure: Type.Union([Type.Literal("Rollback"), Type.Literal("Pause")], { default: "Rollback" }),
    onBlocked: Type.Union([Type.Literal("Wait"), Type.Literal("Skip"), Type.Literal("Fail")], {
      default: "Wait",
      description:
        "What a workload whose PodDisruptionBudget allows no disruption now does to its proxy rollout step: Wait (the step waits, and says for what), Skip (it is left on its version and reported), Fail (the step fails and the rollout halts, without a rollback).",
    }),
    paused: Type.Boolean({ default: false, description: "Pause the upgrade in progress; false resumes it." }),
    approval: Type.Union([Type.Literal("Automatic"), Type.Literal("Manual")], {
      default: "Automatic",
      description:
        "Manual: a new mesh or proxy version waits, with its plan in status.upgradePlan, until the Mesh is annotated trellis.dev/approve-upgrade=<status.upgradePlan.id> (kubectl trellis upgrade approve).",
    }),
    controlPlaneDeadline: Duration("How long a new control-plane revision has to become healthy.", "5m"),
    stepDeadline: Duration(
      "How long the restarts of one rollout step may take before the step fails.",
      "10m",
    ),
    force: Type.Boolean({ default: false, description: "Allow version changes outside the skew policy." }),
  },
  {
    default: {},
    "x-kubernetes-validations": [
      { rule: "self.waves[self.waves.size() - 1] == 100", message: "the last wave must be 100" },
    ],
  },
);

export const MeshSpec = Type.Object({
  version: SemVer("Mesh release (control plane and proxy), e.g. 1.0.0."),
  controlPlane: ControlPlaneSpec,
  proxy: ProxySpec,
  injection: InjectionSpec,
  identity: IdentitySpec,
  upgrade: UpgradeSpec,
});
export type MeshSpec = Static<typeof MeshSpec>;

const ComponentStatus = Type.Object({
  name: Type.String(),
  revision: Type.String(),
  ready: Type.Boolean(),
  readyReplicas: Type.Integer(),
  replicas: Type.Integer(),
});

export const ROTATION_PHASES = [
  "Stable",
  "AnchorCreated",
  "BundlePublished",
  "IssuerSwitched",
  "OldAnchorRemoved",
] as const;

/**
 * A pass of restarts through the canary and the waves: a proxy rollout (status.rollout), or a
 * data-plane repair (status.repair: fromVersion = toVersion, the fleet's version).
 */
const ProxyPass = Type.Object({
  fromVersion: Type.String(),
  toVersion: Type.String(),
  step: Type.Integer({ description: "0 is the canary, 1.. the waves." }),
  steps: Type.Integer(),
  state: Type.String({
    description:
      "Restarting, Analysing, Paused, Halted (failed, onFailure Pause, or blocked), RolledBack, Complete; a repair also Superseded (by a proxy rollout).",
  }),
  startedAt: Type.Optional(
    Type.String({
      format: "date-time",
      description: "When the rollout began: workloads restarted since then are the ones a rollback restarts.",
    }),
  ),
  stepStartedAt: Type.Optional(Type.String({ format: "date-time" })),
  analysisSince: Type.Optional(Type.String({ format: "date-time" })),
  updatedWorkloads: Type.Optional(Type.Integer()),
  totalWorkloads: Type.Optional(
    Type.Integer({ description: "Workloads the rollout restarts (skipped ones not counted)." }),
  ),
  blockedWorkloads: Type.Optional(
    Type.Integer({ description: "Workloads of the step waiting for a PodDisruptionBudget." }),
  ),
  skippedWorkloads: Type.Optional(Type.Integer({ description: "Workloads the rollout leaves as they are." })),
  pendingPods: Type.Optional(
    Type.Integer({
      description: "Job, CronJob and bare pods on another version: they end on their own.",
    }),
  ),
  held: Type.Optional(
    Type.Array(
      Type.Object({
        workload: Type.String({ description: "Kind/namespace/name." }),
        reason: Type.String(),
        message: Type.String(),
      }),
      {
        maxItems: 10,
        description:
          "The first workloads (and pods) the rollout does not restart now, and why: blocked, skipped, pending.",
      },
    ),
  ),
  message: Type.Optional(Type.String()),
});

export const MeshStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  conditions: Type.Optional(Conditions),
  phase: Type.Optional(
    Type.String({ description: "Installing, Ready, Upgrading, RollingBack, Degraded, Deleting." }),
  ),
  version: Type.Optional(Type.String({ description: "Mesh version the control plane runs." })),
  targetVersion: Type.Optional(Type.String({ description: "Version being rolled out." })),
  operatorVersion: Type.Optional(Type.String()),
  controlPlane: Type.Optional(
    Type.Object({
      version: Type.Optional(Type.String({ description: "Version of the active revision." })),
      previousVersion: Type.Optional(Type.String()),
      targetVersion: Type.Optional(Type.String({ description: "Version of the candidate revision." })),
      candidateSince: Type.Optional(Type.String({ format: "date-time" })),
      failedVersion: Type.Optional(
        Type.String({ description: "A version that was rolled back; not retried." }),
      ),
      components: Type.Optional(Type.Array(ComponentStatus, { maxItems: 32 })),
    }),
  ),
  proxies: Type.Optional(
    Type.Object({
      total: Type.Integer({ description: "Running injected pods (finished Job pods not counted)." }),
      updated: Type.Integer(),
      pending: Type.Optional(
        Type.Integer({
          description:
            "Pods on another version that no rollout restarts: Job, CronJob and bare pods (they get the version when they are re-created).",
        }),
      ),
      skipped: Type.Optional(
        Type.Integer({ description: "Pods on another version in workloads the rollout skipped." }),
      ),
      missing: Type.Optional(
        Type.Integer({
          description: "Pods that should carry the proxy (meshed namespace or pod) and run without one.",
        }),
      ),
      outOfSkew: Type.Optional(
        Type.Integer({
          description: "Proxies whose version is outside the skew policy of the control plane.",
        }),
      ),
      incomplete: Type.Optional(
        Type.Array(
          Type.Object({
            workload: Type.String({ description: "Kind/namespace/name (Pod/... for a bare pod)." }),
            missing: Type.Integer(),
            outOfSkew: Type.Integer(),
          }),
          { maxItems: 10, description: "The first workloads with pods missing a proxy or out of skew." },
        ),
      ),
      summary: Type.String({ description: "updated/total (and pending, skipped), for kubectl get." }),
      version: Type.Optional(Type.String({ description: "Proxy version of the fleet outside a rollout." })),
    }),
  ),
  rollout: Type.Optional(ProxyPass),
  repair: Type.Optional(ProxyPass),
  capture: Type.Optional(
    Type.Object({
      mode: Type.Optional(
        Type.Union(
          CAPTURE_MODES.map((m) => Type.Literal(m)),
          {
            description:
              "The capture mode pods get when their workload names none: CNI only once trellis-cni has been ready on every node.",
          },
        ),
      ),
      cni: Type.Optional(
        Type.Object({
          phase: Type.String({
            description: "What the trellis-cni DaemonSet does: Install, Uninstall, or Absent.",
          }),
          nodes: Type.Integer({ description: "Nodes that should run the plugin." }),
          readyNodes: Type.Integer({
            description: "Nodes where it is installed (or removed) as the phase says.",
          }),
          refusedPods: Type.Optional(
            Type.Integer({
              description:
                "Meshed pods refused by their validator: capture was not in place (they started before the plugin was on their node).",
            }),
          ),
          message: Type.Optional(Type.String()),
        }),
      ),
    }),
  ),
  upgradePlan: Type.Optional(
    Type.Object(
      {
        id: Type.String({
          description: "Names this plan; approve it with the annotation trellis.dev/approve-upgrade=<id>.",
        }),
        state: Type.Union([Type.Literal("AwaitingApproval"), Type.Literal("Approved")]),
        summary: Type.String({ description: "The plan in one line (Argo CD shows it)." }),
        controlPlane: Type.Optional(Type.Object({ from: Type.String(), to: Type.String() })),
        proxies: Type.Optional(Type.Object({ from: Type.String(), to: Type.String() })),
        steps: Type.Optional(
          Type.Array(Type.Object({ name: Type.String(), workloads: Type.Integer(), pods: Type.Integer() }), {
            maxItems: 21,
          }),
        ),
        skippedWorkloads: Type.Optional(Type.Integer()),
        since: Type.Optional(Type.String({ format: "date-time" })),
      },
      {
        description:
          "With spec.upgrade.approval Manual: the upgrade the spec asks for, not started until approved (kubectl trellis upgrade plan shows it in full).",
      },
    ),
  ),
  trustAnchor: Type.Optional(
    Type.Object({
      fingerprint: Type.Optional(Type.String()),
      notAfter: Type.Optional(Type.String({ format: "date-time" })),
      rotationPhase: Type.Union(ROTATION_PHASES.map((p) => Type.Literal(p))),
      generation: Type.Optional(
        Type.Integer({
          description: "Generation of the anchor in use (its Certificate is trellis-trust-anchor-<n>).",
        }),
      ),
      nextGeneration: Type.Optional(
        Type.Integer({ description: "Generation of the anchor being rotated in." }),
      ),
      nextFingerprint: Type.Optional(Type.String()),
      bundleFingerprints: Type.Optional(
        Type.Array(Type.String(), { maxItems: 4, description: "Anchors in the published trust bundle." }),
      ),
      proxiesDone: Type.Optional(Type.Integer()),
      proxiesTotal: Type.Optional(Type.Integer()),
      phaseSince: Type.Optional(Type.String({ format: "date-time" })),
      lastRotationRequest: Type.Optional(
        Type.String({
          description: "Value of the trellis.dev/rotate-trust-anchor annotation last acted on.",
        }),
      ),
      message: Type.Optional(Type.String()),
    }),
  ),
});
export type MeshStatus = Static<typeof MeshStatus>;

export interface Mesh {
  apiVersion: "trellis.dev/v1alpha1";
  kind: "Mesh";
  metadata: ObjectMeta;
  spec: MeshSpec;
  status?: MeshStatus;
}

export const MeshKind: KindDefinition<typeof MeshSpec, typeof MeshStatus> = {
  kind: "Mesh",
  plural: "meshes",
  singular: "mesh",
  shortNames: ["mesh"],
  scope: "Cluster",
  description: "A service mesh installed, upgraded and secured by Trellis. Normally one, named default.",
  spec: MeshSpec,
  status: MeshStatus,
  printerColumns: [
    { name: "Version", type: "string", jsonPath: ".status.version" },
    { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    {
      name: "Proxies",
      type: "string",
      jsonPath: ".status.proxies.summary",
      description: "up to date / total",
    },
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "Target", type: "string", jsonPath: ".status.targetVersion", priority: 1 },
    { name: "Anchor", type: "string", jsonPath: ".status.trustAnchor.rotationPhase", priority: 1 },
    { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  ],
};

/** The proxy version a Mesh asks for: spec.proxy.version, else the mesh version. */
export function targetProxyVersion(spec: Pick<MeshSpec, "version" | "proxy">): string {
  return spec.proxy?.version ?? spec.version;
}
