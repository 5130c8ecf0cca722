// The resources the operator reads through informers, each described once: group/version,
// kind, plural, scope. Label-filtered where the operator only cares about what it owns.
import type { InformerSpec } from "../kube/index.ts";

const OWNED = "app.kubernetes.io/managed-by=trellis";

export const RESOURCES = {
  mesh: { apiVersion: "trellis.dev/v1alpha1", kind: "Mesh", plural: "meshes", namespaced: false },
  certificate: {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Certificate",
    plural: "certificates",
    namespaced: true,
  },
  serviceProfile: {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "ServiceProfile",
    plural: "serviceprofiles",
    namespaced: true,
  },
  injectedPod: {
    apiVersion: "v1",
    kind: "Pod",
    plural: "pods",
    namespaced: true,
    labelSelector: "trellis.dev/proxy-version",
  },
  anyNamespace: { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false },
  ownedSecret: {
    apiVersion: "v1",
    kind: "Secret",
    plural: "secrets",
    namespaced: true,
    labelSelector: OWNED,
  },
  namespace: {
    apiVersion: "v1",
    kind: "Namespace",
    plural: "namespaces",
    namespaced: false,
    labelSelector: OWNED,
  },
  serviceAccount: {
    apiVersion: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    namespaced: true,
    labelSelector: OWNED,
  },
  configMap: {
    apiVersion: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    labelSelector: OWNED,
  },
  service: { apiVersion: "v1", kind: "Service", plural: "services", namespaced: true, labelSelector: OWNED },
  deployment: {
    apiVersion: "apps/v1",
    kind: "Deployment",
    plural: "deployments",
    namespaced: true,
    labelSelector: OWNED,
  },
  podDisruptionBudget: {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    plural: "poddisruptionbudgets",
    namespaced: true,
    labelSelector: OWNED,
  },
  clusterRole: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    plural: "clusterroles",
    namespaced: false,
    labelSelector: OWNED,
  },
  clusterRoleBinding: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    namespaced: false,
    labelSelector: OWNED,
  },
  role: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    plural: "roles",
    namespaced: true,
    labelSelector: OWNED,
  },
  roleBinding: {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    plural: "rolebindings",
    namespaced: true,
    labelSelector: OWNED,
  },
  mutatingWebhook: {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "MutatingWebhookConfiguration",
    plural: "mutatingwebhookconfigurations",
    namespaced: false,
    labelSelector: OWNED,
  },
} as const satisfies Record<string, InformerSpec>;

export type ResourceName = keyof typeof RESOURCES;
