// The control-plane components and exactly the permissions each one needs (least privilege).
// Changing a component's access is a change here, reviewed in the golden files and the CSV.
import type { V1PolicyRule } from "@kubernetes/client-node";
import type { MeshSpec } from "../../api/index.ts";
import { DESTINATION_SECRET } from "./identity-objects.ts";

export interface ComponentDefinition {
  name: "destination" | "identity" | "injector";
  description: string;
  /** The port the component serves its API on (gRPC/HTTP2 or HTTPS). */
  port: number;
  portName: string;
  /** Cluster-wide rules (ClusterRole). */
  clusterRules: V1PolicyRule[];
  /** Rules inside the control-plane namespace (Role). */
  namespaceRules: V1PolicyRule[];
  /**
   * A kubernetes.io/tls Secret mounted at SERVING_CERT_DIR and passed as --tls-cert-file and
   * --tls-key-file; the kubelet refreshes the files when the Certificate is renewed.
   */
  servingSecret?: string;
  /** Flags of this component taken from the Mesh spec. */
  args?: (spec: MeshSpec) => string[];
  /**
   * Proxies dial it: it also gets a headless Service (`trellis-<name>-headless`), whose name
   * resolves to the pods' IPs. A proxy's own connections are never captured, and a ClusterIP is
   * routed only by kube-proxy (absent on some clusters, and in the local cluster).
   */
  headless?: boolean;
}

export const SERVING_CERT_DIR = "/var/run/trellis/tls";

export const ADMIN_PORT = 9990;

export const COMPONENTS: readonly ComponentDefinition[] = [
  {
    name: "destination",
    description: "Service discovery: streams endpoints and routes to proxies.",
    port: 8086,
    portName: "grpc",
    clusterRules: [
      { apiGroups: [""], resources: ["services", "endpoints", "pods"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["trellis.dev"], resources: ["serviceprofiles"], verbs: ["get", "list", "watch"] },
    ],
    namespaceRules: [],
    servingSecret: DESTINATION_SECRET,
    headless: true,
  },
  {
    name: "identity",
    description: "Certificate authority of the mesh: signs proxy CSRs after a TokenReview.",
    port: 8080,
    portName: "https",
    args: (spec) => [`--leaf-lifetime=${spec.identity.leafLifetime}`],
    headless: true,
    clusterRules: [
      { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"] },
      // Proxies' trust reports: two annotations on the pod a token is bound to (docs/identity.md).
      { apiGroups: [""], resources: ["pods"], verbs: ["patch"] },
    ],
    namespaceRules: [
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["trellis-identity-issuer"],
        verbs: ["get", "watch", "list"],
      },
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
    ],
  },
  {
    name: "injector",
    description: "Mutating admission webhook: adds the proxy as a native sidecar to meshed pods.",
    port: 8443,
    portName: "https",
    clusterRules: [
      { apiGroups: [""], resources: ["namespaces"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["trellis.dev"], resources: ["meshes"], verbs: ["get", "list", "watch"] },
      { apiGroups: ["apps"], resources: ["replicasets"], verbs: ["get", "list", "watch"] },
      // Why a pod was meshed differently than asked (bad capture annotations, hostNetwork, a
      // Pod Security level that forbids trellis-init): Events on its owner, in any namespace.
      { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
    ],
    namespaceRules: [
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["trellis-injector-tls"],
        verbs: ["get", "watch", "list"],
      },
    ],
  },
];
