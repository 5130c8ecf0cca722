// `stat [namespace[/workload]]`: golden metrics per workload, inbound and outbound, from the
// Mesh's Prometheus when it names one (spec.upgrade.analysis.prometheusUrl, or --prometheus-url),
// else from the proxies' admin endpoints through the API server (stat-sources.ts).
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { ANNOTATIONS, CONTROL_PLANE_NAMESPACE, counted, LABELS, parseDuration } from "../../api/index.ts";
import { isNotFound } from "../../kube/index.ts";
import { type Cluster, listAll, TYPES } from "../cluster.ts";
import type { CommandSpec } from "../command-line.ts";
import { formatOf, renderData, styleFor } from "../output.ts";
import { MESH_FLAG } from "../upgrade/plan-command.ts";
import { MeshNotFoundError, readMesh } from "../upgrade/plan-inputs.ts";
import { EXIT, UsageError } from "../usage-error.ts";
import { renderStat } from "./stat-render.ts";
import { statReport, workloadOf } from "./stat-report.ts";
import { queryPrometheus, scrapeProxies } from "./stat-sources.ts";

function windowOf(text: string): number {
  if (text === "0") return 0;
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(
      `--window "${text}" is not a duration (e.g. 30s, 1m; 0 for counts since each proxy started)`,
    );
  }
}

export const statCommand: CommandSpec = {
  path: ["stat"],
  summary: "golden metrics per workload: meshed pods, success rate, RPS, p50/p95/p99 latency, mTLS share",
  args: "[namespace[/workload]]",
  maxArgs: 1,
  description:
    "From the Mesh's Prometheus when one is configured (its series need `namespace` and `pod` labels),\nelse from each proxy's /metrics through the API server (pods/proxy), scraped at the start and end of the window.",
  flags: {
    window: {
      type: "string",
      value: "DURATION",
      description: "the window: 1m from Prometheus, 10s from the proxies; 0 = since each proxy started",
    },
    from: { type: "string", value: "SOURCE", description: "auto, prometheus or proxies", default: "auto" },
    "prometheus-url": {
      type: "string",
      value: "URL",
      description: "query this Prometheus instead of the Mesh's",
    },
    ...MESH_FLAG,
  },
  examples: ["stat", "stat shop", "stat shop/checkout --window 30s", "stat -o json"],
  async run(inv) {
    const [target] = inv.positionals;
    const [namespace, workload, ...extra] = (target ?? "").split("/");
    if (extra.length > 0 || (target !== undefined && !namespace))
      throw new UsageError(`"${target}" is not namespace or namespace/workload`);
    const from = String(inv.flags.from);
    if (!["auto", "prometheus", "proxies"].includes(from))
      throw new UsageError(`--from must be auto, prometheus or proxies, not "${from}"`);
    const cluster = inv.cluster();
    const url =
      typeof inv.flags["prometheus-url"] === "string"
        ? inv.flags["prometheus-url"]
        : await meshPrometheus(cluster, typeof inv.flags.mesh === "string" ? inv.flags.mesh : undefined);
    const usePrometheus = from === "prometheus" || (from === "auto" && url !== undefined);
    if (usePrometheus && !url)
      throw new UsageError("--from prometheus: the Mesh names no Prometheus; give --prometheus-url");
    const windowText = typeof inv.flags.window === "string" ? inv.flags.window : usePrometheus ? "1m" : "10s";
    const windowMs = windowOf(windowText);
    if (usePrometheus && windowMs === 0)
      throw new UsageError("--window 0 (since each proxy started) needs --from proxies");
    const namespaces = namespace ? [namespace] : await meshedNamespaces(inv.cluster());
    let pods: V1Pod[] = [];
    for (const ns of namespaces)
      pods.push(...(await listAll<V1Pod & KubernetesObject>(cluster.client, TYPES.pod, { namespace: ns })));
    if (workload) {
      pods = pods.filter((p) => workloadOf(p).split("/")[1] === workload || workloadOf(p) === workload);
      if (pods.length === 0) throw new Error(`no pods of workload ${workload} in namespace ${namespace}`);
    }
    const meshed = pods.filter((p) => p.metadata?.labels?.[LABELS.proxyVersion]);
    const result = usePrometheus
      ? await queryPrometheus(cluster, url as string, meshed, windowText)
      : await scrapeProxies(cluster, meshed, windowMs);
    const report = statReport(pods, result.pods, {
      source: usePrometheus
        ? `Prometheus ${url}`
        : `${counted(meshed.length, "proxy's", "proxies'")} admin ${meshed.length === 1 ? "endpoint" : "endpoints"} (through the API server)`,
      window: windowMs === 0 ? "since each proxy started" : windowText,
      windowSeconds: windowMs === 0 ? undefined : windowMs / 1000,
      unreachable: result.unreachable,
    });
    const format = formatOf(inv.flags);
    inv.io.out(
      format === "table" ? renderStat(report, styleFor(inv.io, inv.flags)) : renderData(report, format),
    );
    return meshed.length > 0 && result.pods.length === 0 ? EXIT.failed : EXIT.ok;
  },
};

/** The Prometheus the Mesh's analysis names; none without a Mesh (the proxies are read then). */
async function meshPrometheus(cluster: Cluster, name: string | undefined): Promise<string | undefined> {
  try {
    return (await readMesh(cluster, name)).spec.upgrade?.analysis?.prometheusUrl;
  } catch (err) {
    // No Mesh, or no Mesh kind at all: nothing names a Prometheus.
    if ((err instanceof MeshNotFoundError || isNotFound(err)) && name === undefined) return undefined;
    throw err;
  }
}

async function meshedNamespaces(cluster: Cluster): Promise<string[]> {
  const names = new Set<string>();
  for (const ns of await listAll<KubernetesObject>(cluster.client, TYPES.namespace))
    if (ns.metadata?.annotations?.[ANNOTATIONS.inject] === "enabled") names.add(ns.metadata.name ?? "");
  for (const p of await listAll<KubernetesObject>(cluster.client, TYPES.pod, {
    labelSelector: LABELS.proxyVersion,
  }))
    names.add(p.metadata?.namespace ?? "");
  names.delete("");
  names.delete(CONTROL_PLANE_NAMESPACE);
  return [...names].sort();
}
