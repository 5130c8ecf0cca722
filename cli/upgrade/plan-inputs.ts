// What `upgrade plan` reads: the live Mesh, the spec it would get (a flag or a file), and the
// cluster as the operator's caches hold it — injected pods and workloads reduced by the same
// view functions (podView, workloadObjectView) and summarised by the same inventory().
import { readFileSync } from "node:fs";
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import semver from "semver";
import { parseAllDocuments } from "yaml";
import {
  ANNOTATIONS,
  CONTROL_PLANE_NAMESPACE,
  LABELS,
  type Mesh,
  type MeshSpec,
  validateMeshSpec,
} from "../../api/index.ts";
import { isNotFound, type ResourceType } from "../../kube/index.ts";
import { podView, workloadObjectView } from "../../operator/resources.ts";
import { type NamespaceView, namespaceView } from "../../operator/rollout/data-plane.ts";
import { disruptionBudgetView } from "../../operator/rollout/workload-plan.ts";
import { inventory, type WorkloadKind, type WorkloadObject } from "../../operator/rollout/workloads.ts";
import { type Cluster, listAll, TYPES } from "../cluster.ts";
import type { Flags } from "../command-line.ts";
import { UsageError } from "../usage-error.ts";
import type { Fleet, PlanPreviewInput } from "./upgrade-plan.ts";

/** The Mesh a command acts on: --mesh, else "default", else the only one. */
export async function readMesh(cluster: Cluster, name: string | undefined): Promise<Mesh & KubernetesObject> {
  if (name) {
    try {
      return await cluster.client.get<Mesh & KubernetesObject>(TYPES.mesh, name);
    } catch (err) {
      if (isNotFound(err)) throw new MeshNotFoundError(`Mesh "${name}" does not exist`);
      throw err;
    }
  }
  const meshes = await listAll<Mesh & KubernetesObject>(cluster.client, TYPES.mesh);
  const chosen =
    meshes.find((m) => m.metadata?.name === "default") ?? (meshes.length === 1 ? meshes[0] : undefined);
  if (chosen) return chosen;
  throw new MeshNotFoundError(
    meshes.length === 0
      ? "no Mesh in the cluster (kubectl apply -f docs/examples/mesh.yaml)"
      : `several Meshes and none named default: choose one with --mesh (${meshes.map((m) => m.metadata?.name).join(", ")})`,
  );
}

export class MeshNotFoundError extends Error {}

function semverFlag(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !semver.valid(v))
    throw new UsageError(`--${name} "${String(v)}" is not a semantic version (e.g. 1.2.0)`);
  return v;
}

/** The spec the change would give the Mesh: the live spec with --version/--proxy-version, or a file's. */
export function desiredSpec(mesh: Mesh, flags: Flags): { spec: MeshSpec; source: string } {
  const version = semverFlag(flags, "version");
  const proxyVersion = semverFlag(flags, "proxy-version");
  const file = typeof flags.filename === "string" ? flags.filename : undefined;
  if (file && (version || proxyVersion))
    throw new UsageError("give either -f FILE or --version/--proxy-version, not both");
  if (!file && !version && !proxyVersion)
    throw new UsageError("say what changes: --proxy-version, --version or -f FILE");
  let raw: unknown;
  let source: string;
  if (file) {
    raw = meshSpecFromFile(file, mesh.metadata?.name ?? "default");
    source = file;
  } else {
    const spec = structuredClone(mesh.spec) as MeshSpec;
    if (version) spec.version = version;
    if (proxyVersion) spec.proxy = { ...spec.proxy, version: proxyVersion };
    raw = spec;
    source = [version ? `--version ${version}` : "", proxyVersion ? `--proxy-version ${proxyVersion}` : ""]
      .filter(Boolean)
      .join(" ");
  }
  const checked = validateMeshSpec(raw);
  if (!checked.ok)
    throw new UsageError(
      `${source}: ${checked.errors[0]}${checked.errors.length > 1 ? ` (and ${checked.errors.length - 1} more)` : ""}`,
    );
  return { spec: checked.value, source };
}

function meshSpecFromFile(file: string, name: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const docs = parseAllDocuments(text);
  const broken = docs.find((d) => d.errors.length > 0);
  if (broken) throw new UsageError(`${file} is not YAML: ${broken.errors[0]?.message.split("\n")[0]}`);
  const meshes = docs
    .map(
      (d) =>
        d.toJS() as {
          apiVersion?: string;
          kind?: string;
          metadata?: { name?: string };
          spec?: unknown;
        } | null,
    )
    .filter((o) => o?.kind === "Mesh" && o.apiVersion?.startsWith("trellis.dev/"));
  if (meshes.length === 0)
    throw new UsageError(`${file} holds no Mesh (apiVersion trellis.dev/v1alpha1, kind Mesh)`);
  const mine = meshes.find((m) => (m?.metadata?.name ?? "default") === name);
  if (!mine)
    throw new UsageError(
      `${file} holds no Mesh named ${name} (it has ${meshes.map((m) => m?.metadata?.name).join(", ")})`,
    );
  if (mine.spec === undefined) throw new UsageError(`${file}: the Mesh has no spec`);
  return mine.spec;
}

/** Median seconds from a meshed pod's creation to its Ready condition. */
function podStartSeconds(pods: V1Pod[]): { seconds: number; samples: number } | undefined {
  const samples: number[] = [];
  for (const p of pods) {
    const created = p.metadata?.creationTimestamp;
    const ready = p.status?.conditions?.find(
      (c) => c.type === "Ready" && c.status === "True",
    )?.lastTransitionTime;
    if (!created || !ready) continue;
    const s = (new Date(ready).getTime() - new Date(created).getTime()) / 1000;
    if (s >= 0) samples.push(s);
  }
  if (samples.length === 0) return undefined;
  samples.sort((a, b) => a - b);
  return { seconds: samples[Math.floor(samples.length / 2)] ?? 0, samples: samples.length };
}

const WORKLOAD_TYPES: Array<[WorkloadKind, ResourceType]> = [
  ["Deployment", TYPES.deployment],
  ["StatefulSet", TYPES.statefulSet],
  ["DaemonSet", TYPES.daemonSet],
];

/** The fleet as the rollout controller sees it: injected pods, inventory() and the PodDisruptionBudgets. */
export async function readFleet(cluster: Cluster): Promise<Fleet & { pods: V1Pod[] }> {
  const { client } = cluster;
  const pods = await listAll<V1Pod & KubernetesObject>(client, TYPES.pod, {
    labelSelector: LABELS.proxyVersion,
  });
  const objects: WorkloadObject[] = [];
  for (const [kind, type] of WORKLOAD_TYPES)
    for (const o of await listAll(client, type)) objects.push({ ...workloadObjectView(o), kind });
  const budgets = (await listAll(client, TYPES.podDisruptionBudget)).map(disruptionBudgetView);
  return { pods, inventory: inventory(pods.map(podView), objects), budgets };
}

export async function readPlanInputs(
  cluster: Cluster,
  mesh: Mesh,
  desired: MeshSpec,
  now: Date,
): Promise<PlanPreviewInput> {
  const { client } = cluster;
  const fleet = await readFleet(cluster);
  const { pods } = fleet;
  const namespaces = await listAll<KubernetesObject>(client, TYPES.namespace);
  const views = new Map<string, NamespaceView>();
  const meshed = new Set(pods.map((p) => p.metadata?.namespace ?? ""));
  for (const ns of namespaces) {
    views.set(ns.metadata?.name ?? "", namespaceView(ns));
    if (ns.metadata?.annotations?.[ANNOTATIONS.inject] === "enabled") meshed.add(ns.metadata.name ?? "");
  }
  meshed.delete(CONTROL_PLANE_NAMESPACE);
  const otherPods: V1Pod[] = [];
  for (const ns of [...meshed].filter(Boolean).sort()) {
    const all = await listAll<V1Pod & KubernetesObject>(client, TYPES.pod, { namespace: ns });
    otherPods.push(...all.filter((p) => !p.metadata?.labels?.[LABELS.proxyVersion]));
  }
  return {
    mesh,
    desired,
    fleet,
    otherPods,
    namespaces: views,
    podStart: podStartSeconds(pods),
    now,
  };
}
