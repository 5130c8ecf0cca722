// How the operator itself is installed: its RBAC (exactly what its controllers use; a rule
// missing here fails the OLM test that runs the operator with the ServiceAccount OLM creates)
// and its Deployment. The plain install manifests (deploy/) and the OLM bundle (olm/) are both
// rendered from these, so the two ways to install can never disagree.
import type { V1PolicyRule } from "@kubernetes/client-node";
import { COMPONENTS } from "./mesh/components.ts";
import { DEFAULT_IMAGE_REGISTRY, OPERATOR_VERSION, releaseImageReferences } from "./release.ts";

export const OPERATOR_NAME = "trellis-operator";
export const OPERATOR_NAMESPACE = "trellis-operator";
export const DEFAULT_OPERATOR_IMAGE = releaseImageReferences(
  DEFAULT_IMAGE_REGISTRY,
  OPERATOR_VERSION,
).operator;

const CRUD = ["get", "list", "watch", "create", "update", "patch", "delete"];
const READ = ["get", "list", "watch"];

/** Union of the control-plane components' cluster rules: RBAC lets the operator grant only what it holds. */
function grantedToComponents(): V1PolicyRule[] {
  return COMPONENTS.flatMap((c) => c.clusterRules);
}

/** Cluster-wide permissions of the operator, each with the reason it needs them. */
export const OPERATOR_CLUSTER_RULES: Array<V1PolicyRule & { why: string }> = [
  {
    why: "reconcile the three kinds",
    apiGroups: ["trellis.dev"],
    resources: ["meshes", "serviceprofiles", "certificates"],
    verbs: ["get", "list", "watch", "update", "patch"],
  },
  {
    why: "create the Certificates a Mesh needs",
    apiGroups: ["trellis.dev"],
    resources: ["certificates"],
    verbs: ["create", "delete"],
  },
  {
    why: "write status",
    apiGroups: ["trellis.dev"],
    resources: ["meshes/status", "serviceprofiles/status", "certificates/status"],
    verbs: ["get", "update", "patch"],
  },
  {
    why: "owner references with blockOwnerDeletion",
    apiGroups: ["trellis.dev"],
    resources: ["meshes/finalizers", "certificates/finalizers"],
    verbs: ["update"],
  },
  { why: "the control-plane namespace", apiGroups: [""], resources: ["namespaces"], verbs: CRUD },
  {
    why: "control-plane ServiceAccounts, Services, trust-bundle ConfigMaps",
    apiGroups: [""],
    resources: ["serviceaccounts", "services", "configmaps"],
    verbs: CRUD,
  },
  {
    why: "Certificate Secrets, in the namespace of each Certificate",
    apiGroups: [""],
    resources: ["secrets"],
    verbs: CRUD,
  },
  {
    why: "Events on the objects it reconciles",
    apiGroups: ["", "events.k8s.io"],
    resources: ["events"],
    verbs: ["create", "patch", "update"],
  },
  {
    why: "count and analyse meshed pods during rollouts; find pods that should carry the proxy and do not",
    apiGroups: [""],
    resources: ["pods"],
    verbs: READ,
  },
  {
    why: "control-plane Deployments; restarting meshed workloads in a rollout",
    apiGroups: ["apps"],
    resources: ["deployments"],
    verbs: CRUD,
  },
  {
    why: "restarting meshed workloads in a rollout",
    apiGroups: ["apps"],
    resources: ["statefulsets"],
    verbs: ["get", "list", "watch", "patch"],
  },
  {
    why: "the trellis-cni DaemonSet (capture mode CNI); restarting meshed workloads in a rollout",
    apiGroups: ["apps"],
    resources: ["daemonsets"],
    verbs: CRUD,
  },
  {
    why: "restarting a meshed pod its validator refused (it started before trellis-cni was ready on its node); only pods with a controller",
    apiGroups: [""],
    resources: ["pods"],
    verbs: ["delete"],
  },
  {
    why: "PodDisruptionBudgets of a highly available control plane",
    apiGroups: ["policy"],
    resources: ["poddisruptionbudgets"],
    verbs: CRUD,
  },
  {
    why: "least-privilege RBAC of the control-plane components",
    apiGroups: ["rbac.authorization.k8s.io"],
    resources: ["clusterroles", "clusterrolebindings", "roles", "rolebindings"],
    verbs: CRUD,
  },
  {
    why: "the injector's webhook configuration",
    apiGroups: ["admissionregistration.k8s.io"],
    resources: ["mutatingwebhookconfigurations"],
    verbs: CRUD,
  },
  ...grantedToComponents().map((r) => ({
    ...r,
    why: "held so that it can be granted to a control-plane component",
  })),
];

/** Permissions in the operator's own namespace. */
export const OPERATOR_NAMESPACE_RULES: Array<V1PolicyRule & { why: string }> = [
  {
    why: "leader election",
    apiGroups: ["coordination.k8s.io"],
    resources: ["leases"],
    verbs: ["get", "list", "watch", "create", "update", "patch"],
  },
];

/** The rules without their reasons, merged by (apiGroups, resources, resourceNames) for a Role or ClusterRole. */
export function policyRules(rules: Array<V1PolicyRule & { why: string }>): V1PolicyRule[] {
  const merged = new Map<string, V1PolicyRule>();
  for (const { why: _why, ...rule } of rules) {
    const key = JSON.stringify([rule.apiGroups, rule.resources, rule.resourceNames ?? []]);
    const existing = merged.get(key);
    if (existing) existing.verbs = [...new Set([...existing.verbs, ...rule.verbs])];
    else merged.set(key, { ...rule, verbs: [...rule.verbs] });
  }
  return [...merged.values()];
}

/** The operator's Deployment spec (pod template and selector), shared by deploy/ and the CSV. */
export function operatorDeploymentSpec(image: string) {
  return {
    replicas: 2,
    selector: { matchLabels: { "app.kubernetes.io/name": OPERATOR_NAME } },
    template: {
      metadata: { labels: { "app.kubernetes.io/name": OPERATOR_NAME, "trellis.dev/inject": "disabled" } },
      spec: {
        serviceAccountName: OPERATOR_NAME,
        securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } },
        containers: [
          {
            name: "operator",
            image,
            args: ["operator", "--namespace=$(POD_NAMESPACE)"],
            env: [{ name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } }],
            ports: [{ name: "metrics", containerPort: 8080 }],
            readinessProbe: { httpGet: { path: "/readyz", port: "metrics" }, periodSeconds: 5 },
            livenessProbe: { httpGet: { path: "/healthz", port: "metrics" }, periodSeconds: 10 },
            resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ["ALL"] },
            },
          },
        ],
      },
    },
  };
}

/** Every object of a plain (non-OLM) install of the operator, CRDs excluded. */
export function renderOperatorInstall(
  image: string = DEFAULT_OPERATOR_IMAGE,
): Array<Record<string, unknown>> {
  const labels = { "app.kubernetes.io/name": OPERATOR_NAME, "app.kubernetes.io/part-of": "trellis" };
  const meta = (name: string, namespaced: boolean) => ({
    name,
    ...(namespaced ? { namespace: OPERATOR_NAMESPACE } : {}),
    labels,
  });
  const subjects = [{ kind: "ServiceAccount", name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE }];
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: meta(OPERATOR_NAMESPACE, false) },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: meta(OPERATOR_NAME, true) },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: meta(OPERATOR_NAME, false),
      rules: policyRules(OPERATOR_CLUSTER_RULES),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: meta(OPERATOR_NAME, false),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: OPERATOR_NAME },
      subjects,
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(OPERATOR_NAME, true),
      rules: policyRules(OPERATOR_NAMESPACE_RULES),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(OPERATOR_NAME, true),
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: OPERATOR_NAME },
      subjects,
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta(OPERATOR_NAME, true),
      spec: operatorDeploymentSpec(image),
    },
  ];
}
