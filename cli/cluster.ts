// The command line's way into the cluster: the user's kubeconfig and context (as kubectl picks
// them: --kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context, else the current one),
// the project's REST client (kube/), paged lists, and the resource types the commands read.
// Owns connection set-up and the translation of failures into one line a person can act on;
// does not own what is read for which command (cluster-snapshot.ts and the commands).
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { KubeConfig, type KubernetesObject } from "@kubernetes/client-node";
import { ApiError, KubeClient, type ResourceType } from "../kube/index.ts";
import { RESOURCES } from "../operator/resources.ts";
import { UsageError } from "./usage-error.ts";

export interface Cluster {
  client: KubeClient;
  context: string;
  server: string;
  user: string;
}

export const TYPES = {
  mesh: RESOURCES.mesh,
  certificate: RESOURCES.certificate,
  pod: { apiVersion: "v1", kind: "Pod", plural: "pods", namespaced: true },
  namespace: { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false },
  configMap: { apiVersion: "v1", kind: "ConfigMap", plural: "configmaps", namespaced: true },
  node: { apiVersion: "v1", kind: "Node", plural: "nodes", namespaced: false },
  event: { apiVersion: "v1", kind: "Event", plural: "events", namespaced: true },
  deployment: { apiVersion: "apps/v1", kind: "Deployment", plural: "deployments", namespaced: true },
  statefulSet: { apiVersion: "apps/v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true },
  daemonSet: { apiVersion: "apps/v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true },
  replicaSet: { apiVersion: "apps/v1", kind: "ReplicaSet", plural: "replicasets", namespaced: true },
  podDisruptionBudget: RESOURCES.anyPodDisruptionBudget,
  lease: { apiVersion: "coordination.k8s.io/v1", kind: "Lease", plural: "leases", namespaced: true },
  crd: {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    plural: "customresourcedefinitions",
    namespaced: false,
  },
  selfSubjectAccessReview: {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
    plural: "selfsubjectaccessreviews",
    namespaced: false,
  },
} as const satisfies Record<string, ResourceType>;

/** No kubeconfig anywhere kubectl would look, and not inside a pod: no cluster to reach. */
export class NoKubeconfigError extends Error {
  constructor() {
    super("no cluster reachable: no kubeconfig (set KUBECONFIG or --kubeconfig, or ~/.kube/config)");
  }
}

/** Loads the kubeconfig and context the user asked for, as kubectl would. */
export function connect(flags: { kubeconfig?: unknown; context?: unknown }, env: NodeJS.ProcessEnv): Cluster {
  const kc = new KubeConfig();
  const file = typeof flags.kubeconfig === "string" ? flags.kubeconfig : undefined;
  try {
    if (file) kc.loadFromFile(file);
    else if (env.KUBECONFIG) {
      // client-node reads process.env; a test may pass its own environment.
      const files = env.KUBECONFIG.split(":").filter(Boolean);
      if (files.length === 1 && files[0]) kc.loadFromFile(files[0]);
      else kc.loadFromDefault();
    } else if (existsSync(join(homedir(), ".kube", "config")) || env.KUBERNETES_SERVICE_HOST)
      kc.loadFromDefault();
    else throw new NoKubeconfigError();
  } catch (err) {
    if (err instanceof NoKubeconfigError) throw err;
    throw new UsageError(
      `cannot read kubeconfig ${file ?? env.KUBECONFIG ?? "~/.kube/config"}: ${firstLine(err)}`,
    );
  }
  if (typeof flags.context === "string") {
    if (!kc.getContextObject(flags.context))
      throw new UsageError(`context "${flags.context}" is not in the kubeconfig`);
    kc.setCurrentContext(flags.context);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster)
    throw new UsageError("the kubeconfig names no current cluster (kubectl config use-context NAME)");
  return {
    client: new KubeClient(kc),
    context: kc.getCurrentContext(),
    server: cluster.server,
    user: kc.getCurrentUser()?.name ?? "",
  };
}

/** Every object of a type, following the API server's pages. */
export async function listAll<T extends KubernetesObject>(
  client: KubeClient,
  type: ResourceType,
  options: { namespace?: string; labelSelector?: string } = {},
): Promise<T[]> {
  const items: T[] = [];
  let next: string | undefined;
  do {
    const page = await client.list<T>(type, { ...options, limit: 500, ...(next ? { continue: next } : {}) });
    items.push(...page.items);
    next = page.metadata?.continue || undefined;
  } while (next);
  return items;
}

/** A list that may be forbidden or not served: undefined then, so a check can say so. */
export async function listIfAllowed<T extends KubernetesObject>(
  client: KubeClient,
  type: ResourceType,
  options: { namespace?: string; labelSelector?: string } = {},
): Promise<T[] | undefined> {
  try {
    return await listAll<T>(client, type, options);
  } catch (err) {
    if (err instanceof ApiError && (err.statusCode === 403 || err.statusCode === 404)) return undefined;
    throw err;
  }
}

/** Network-level failures (no API server there), as opposed to the API server's answers. */
const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ECONNRESET",
  "EAI_AGAIN",
  "EPIPE",
]);

/** One line for a failure, never a stack trace. */
export function describeFailure(err: unknown, cluster: Cluster | undefined): string {
  const where = cluster ? ` (context "${cluster.context}", ${cluster.server})` : "";
  if (err instanceof ApiError) {
    const resource = describePath(err.path);
    switch (err.statusCode) {
      case 401:
        return `the API server refused the credentials of user "${cluster?.user ?? "?"}"${where}: ${err.reason}`;
      case 403: {
        const verb = kubeVerb(err.method, err.path);
        return `forbidden: ${cluster?.user ? `user "${cluster.user}"` : "you"} may not ${verb} ${resource}${where} (kubectl auth can-i ${verb} ${resource.split(" ")[0]?.split("/")[0]})`;
      }
      case 404:
        return `${resource} not found${where}`;
      default:
        return `the API server answered ${err.statusCode} ${err.reason} to ${verbOf(err.method)} ${resource}: ${firstLine(err.message.split(": ").slice(2).join(": "))}`;
    }
  }
  const code = (err as { code?: string }).code;
  if (code && UNREACHABLE.has(code)) return `no cluster reachable${where}: ${code}`;
  if (/timed out/.test(firstLine(err))) return `no cluster reachable${where}: ${firstLine(err)}`;
  if (
    code?.startsWith("ERR_TLS") ||
    code === "DEPTH_ZERO_SELF_SIGNED_CERT" ||
    code === "UNABLE_TO_VERIFY_LEAF_SIGNATURE"
  )
    return `cannot verify the API server's certificate${where}: ${code}`;
  return firstLine(err);
}

/** The RBAC verb of a request: GET of a collection is list, of an object get. */
function kubeVerb(method: string, path: string): string {
  if (method !== "GET")
    return { POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" }[method] ?? method;
  const parts = path.split("?")[0]?.split("/").filter(Boolean) ?? [];
  const rest = parts[0] === "api" ? parts.slice(2) : parts.slice(3);
  if (rest[0] === "namespaces" && rest.length > 2) rest.splice(0, 2);
  return rest.length >= 2 ? "get" : "list";
}

function verbOf(method: string): string {
  return { GET: "read", POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" }[method] ?? method;
}

/** "/api/v1/namespaces/shop/pods" → "pods in namespace shop". */
function describePath(path: string): string {
  const parts = path.split("?")[0]?.split("/").filter(Boolean) ?? [];
  const rest = parts[0] === "api" ? parts.slice(2) : parts.slice(3);
  let namespace: string | undefined;
  if (rest[0] === "namespaces" && rest.length > 2) {
    namespace = rest[1];
    rest.splice(0, 2);
  }
  const [plural = path, name, ...sub] = rest;
  const what = name ? `${plural}/${name}${sub.length ? `/${sub.join("/")}` : ""}` : plural;
  return namespace ? `${what} in namespace ${namespace}` : what;
}

export function firstLine(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.split("\n")[0] ?? m;
}
