// What `check` reads from the cluster, gathered once into plain facts so that every check is a
// pure function of them (checks.ts). A list the user may not read becomes `undefined`, and the
// check that needed it says so, instead of the whole command failing.
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import {
  ANNOTATIONS,
  type Certificate,
  CONTROL_PLANE_NAMESPACE,
  customResourceDefinition,
  FIELD_MANAGER,
  GROUP,
  KINDS,
  LABELS,
  type Mesh,
} from "../../api/index.ts";
import { OPERATOR_NAME } from "../../operator/install-manifests.ts";
import { TRUST_BUNDLE_CONFIGMAP } from "../../operator/mesh/render.ts";
import { type NamespaceView, namespaceView } from "../../operator/rollout/data-plane.ts";
import { fingerprint, pemBlocks } from "../../pki/index.ts";
import { type Cluster, listAll, listIfAllowed, TYPES } from "../cluster.ts";

export interface CrdFact {
  name: string;
  installed: boolean;
  /** The installed schema is the one this build of Trellis publishes. */
  current: boolean;
}

export interface OperatorFact {
  deployments: Array<{ namespace: string; name: string; version: string; ready: number; replicas: number }>;
  /** The leader-election Lease, when the operator runs with it. */
  lease?: { namespace: string; holder: string; renewTime: string | undefined; durationSeconds: number };
}

export interface AccessFact {
  verb: string;
  resource: string;
  group: string;
  allowed: boolean;
}

export interface CheckFacts {
  now: Date;
  cliVersion: string;
  serverVersion: string | undefined;
  crds: CrdFact[] | undefined;
  operator: OperatorFact | undefined;
  meshes: Mesh[] | undefined;
  /** Pods of the control-plane namespace. */
  controlPlanePods: V1Pod[] | undefined;
  certificates: Certificate[] | undefined;
  /** Namespaces whose pods are meshed: annotated trellis.dev/inject=enabled or holding injected pods. */
  meshedNamespaces: Array<{ name: string; annotations: Record<string, string> }>;
  /** Every namespace with its labels and annotations (the injector's namespaceSelector reads labels). */
  namespaces?: NamespaceView[];
  /** Anchor fingerprints in each meshed namespace's trust-bundle ConfigMap; undefined when it is missing. */
  bundles: Map<string, string[] | undefined>;
  /**
   * Injected pods; for --proxies also every pod without a proxy (cluster-wide, or of the meshed
   * namespaces when only those may be read): a pod may opt in within an unannotated namespace.
   */
  pods: V1Pod[] | undefined;
  /** For --pre: what the user may do. */
  access?: AccessFact[];
}

type CrdObject = KubernetesObject & {
  spec?: { versions?: Array<{ name: string; schema?: { openAPIV3Schema?: unknown } }> };
};

/** Canonical JSON (sorted keys): the API server may reorder what it stores. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

async function readCrds(cluster: Cluster): Promise<CrdFact[] | undefined> {
  const installed = await listIfAllowed<CrdObject>(cluster.client, TYPES.crd, {
    labelSelector: "app.kubernetes.io/part-of=trellis",
  });
  if (!installed) return undefined;
  return KINDS.map((k) => {
    const want = customResourceDefinition(k) as unknown as CrdObject & { metadata: { name: string } };
    const have = installed.find((c) => c.metadata?.name === want.metadata.name);
    const schema = (c: CrdObject | undefined) => canonical(c?.spec?.versions?.map((v) => [v.name, v.schema]));
    return {
      name: want.metadata.name,
      installed: have !== undefined,
      current: schema(have) === schema(want),
    };
  });
}

export async function gatherOperator(cluster: Cluster): Promise<OperatorFact | undefined> {
  type Deploy = KubernetesObject & {
    spec?: { replicas?: number; template?: { spec?: { containers?: Array<{ image?: string }> } } };
    status?: { readyReplicas?: number };
  };
  const deployments = await listIfAllowed<Deploy>(cluster.client, TYPES.deployment, {
    labelSelector: `app.kubernetes.io/name=${OPERATOR_NAME}`,
  });
  type Lease = KubernetesObject & {
    spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
  };
  const leases = await listIfAllowed<Lease>(cluster.client, TYPES.lease);
  if (!deployments && !leases) return undefined;
  const lease = leases?.find((l) => l.metadata?.name === FIELD_MANAGER && l.spec?.holderIdentity);
  return {
    deployments: (deployments ?? []).map((d) => ({
      namespace: d.metadata?.namespace ?? "",
      name: d.metadata?.name ?? "",
      version: d.spec?.template?.spec?.containers?.[0]?.image?.split(":").pop() ?? "?",
      ready: d.status?.readyReplicas ?? 0,
      replicas: d.spec?.replicas ?? 1,
    })),
    ...(lease
      ? {
          lease: {
            namespace: lease.metadata?.namespace ?? "",
            holder: lease.spec?.holderIdentity ?? "",
            renewTime: lease.spec?.renewTime,
            durationSeconds: lease.spec?.leaseDurationSeconds ?? 15,
          },
        }
      : {}),
  };
}

export async function serverVersion(cluster: Cluster): Promise<string> {
  const v = await cluster.client.request<{ gitVersion?: string }>({ method: "GET", path: "/version" });
  return v.gitVersion ?? "unknown";
}

export async function gatherFacts(
  cluster: Cluster,
  options: { cliVersion: string; proxies: boolean; pre: boolean; now?: Date },
): Promise<CheckFacts> {
  const { client } = cluster;
  const version = await serverVersion(cluster);
  const crds = await readCrds(cluster);
  const served = crds?.every((c) => c.installed) ?? false;
  const meshes = served ? await listIfAllowed<Mesh & KubernetesObject>(client, TYPES.mesh) : [];
  const certificates = served
    ? await listIfAllowed<Certificate & KubernetesObject>(client, TYPES.certificate)
    : [];
  const controlPlanePods = await listIfAllowed<V1Pod & KubernetesObject>(client, TYPES.pod, {
    namespace: CONTROL_PLANE_NAMESPACE,
  });
  const namespaces = (await listIfAllowed<KubernetesObject>(client, TYPES.namespace)) ?? [];
  const injected =
    (await listIfAllowed<V1Pod & KubernetesObject>(client, TYPES.pod, {
      labelSelector: LABELS.proxyVersion,
    })) ?? [];
  const meshedNames = new Set(injected.map((p) => p.metadata?.namespace ?? ""));
  for (const ns of namespaces)
    if (ns.metadata?.annotations?.[ANNOTATIONS.inject] === "enabled") meshedNames.add(ns.metadata.name ?? "");
  meshedNames.delete("");
  meshedNames.delete(CONTROL_PLANE_NAMESPACE);
  const meshedNamespaces = [...meshedNames].sort().map((name) => ({
    name,
    annotations: namespaces.find((n) => n.metadata?.name === name)?.metadata?.annotations ?? {},
  }));
  const bundles = new Map<string, string[] | undefined>();
  const configMaps = await listIfAllowed<KubernetesObject & { data?: Record<string, string> }>(
    client,
    TYPES.configMap,
    { labelSelector: "app.kubernetes.io/managed-by=trellis" },
  );
  for (const { name } of meshedNamespaces) {
    const cm = configMaps?.find(
      (c) => c.metadata?.namespace === name && c.metadata.name === TRUST_BUNDLE_CONFIGMAP,
    );
    const pem = cm?.data?.["ca-bundle.crt"];
    bundles.set(
      name,
      pem === undefined ? undefined : pemBlocks(pem, "CERTIFICATE").map((der) => fingerprint(der)),
    );
  }
  let pods: V1Pod[] | undefined = injected;
  if (options.proxies) {
    pods = [...injected];
    const uninjected = await listIfAllowed<V1Pod & KubernetesObject>(client, TYPES.pod, {
      labelSelector: `!${LABELS.proxyVersion}`,
    });
    if (uninjected) pods.push(...uninjected);
    else
      for (const { name } of meshedNamespaces) {
        const inNs = await listAll<V1Pod & KubernetesObject>(client, TYPES.pod, { namespace: name });
        pods.push(...inNs.filter((p) => !p.metadata?.labels?.[LABELS.proxyVersion]));
      }
  }
  return {
    now: options.now ?? new Date(),
    cliVersion: options.cliVersion,
    serverVersion: version,
    crds,
    operator: await gatherOperator(cluster),
    meshes,
    controlPlanePods,
    certificates,
    meshedNamespaces,
    namespaces: namespaces.map(namespaceView),
    bundles,
    pods,
    ...(options.pre ? { access: await readAccess(cluster) } : {}),
  };
}

/** What installing Trellis needs the user to be allowed to do (cluster-wide). */
export const INSTALL_ACCESS: Array<Omit<AccessFact, "allowed">> = [
  { verb: "create", resource: "customresourcedefinitions", group: "apiextensions.k8s.io" },
  { verb: "create", resource: "clusterroles", group: "rbac.authorization.k8s.io" },
  { verb: "create", resource: "clusterrolebindings", group: "rbac.authorization.k8s.io" },
  { verb: "create", resource: "mutatingwebhookconfigurations", group: "admissionregistration.k8s.io" },
  { verb: "create", resource: "namespaces", group: "" },
  { verb: "create", resource: "meshes", group: GROUP },
];

async function readAccess(cluster: Cluster): Promise<AccessFact[]> {
  const out: AccessFact[] = [];
  for (const a of INSTALL_ACCESS) {
    const review = await cluster.client.create<KubernetesObject & { status?: { allowed?: boolean } }>(
      TYPES.selfSubjectAccessReview,
      {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SelfSubjectAccessReview",
        spec: { resourceAttributes: { verb: a.verb, resource: a.resource, group: a.group } },
      } as KubernetesObject,
    );
    out.push({ ...a, allowed: review.status?.allowed === true });
  }
  return out;
}
