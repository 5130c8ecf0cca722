// RBAC of one control-plane component: a ClusterRole/Binding for its cluster-wide reads and a
// Role/Binding for what it may touch in the control-plane namespace. Nothing else.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { CONTROL_PLANE_NAMESPACE } from "../../api/index.ts";
import type { ComponentDefinition } from "./components.ts";
import type { KubeObject } from "./render.ts";

type NamedMeta = V1ObjectMeta & { name: string };

export function renderRbac(base: NamedMeta, c: ComponentDefinition): KubeObject[] {
  const name = `trellis-${c.name}`;
  const subject = [{ kind: "ServiceAccount", name, namespace: CONTROL_PLANE_NAMESPACE }];
  const { namespace: _namespaced, ...clusterScoped } = base;
  const clusterMeta = { ...clusterScoped, name };
  const out: KubeObject[] = [];
  if (c.clusterRules.length > 0) {
    out.push(
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: clusterMeta,
        rules: c.clusterRules,
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: clusterMeta,
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
        subjects: subject,
      },
    );
  }
  if (c.namespaceRules.length > 0) {
    const nsMeta = { ...base, name, namespace: CONTROL_PLANE_NAMESPACE };
    out.push(
      { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: nsMeta, rules: c.namespaceRules },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: nsMeta,
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
        subjects: subject,
      },
    );
  }
  return out;
}
