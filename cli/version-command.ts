// `version`: this program's version, and when a cluster is reachable the Kubernetes, operator
// and mesh versions it runs. `--client` prints only the first.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Mesh } from "../api/index.ts";
import { OPERATOR_VERSION } from "../operator/release.ts";
import { gatherOperator, serverVersion } from "./check/check-facts.ts";
import { listIfAllowed, TYPES } from "./cluster.ts";
import type { CommandSpec } from "./command-line.ts";
import { formatOf, renderData } from "./output.ts";
import { EXIT } from "./usage-error.ts";

export interface VersionReport {
  client: string;
  kubernetes?: string;
  operator?: string;
  meshes?: Array<{ name: string; version?: string; proxyVersion?: string; proxies?: string }>;
}

export function renderVersion(v: VersionReport): string {
  const lines = [`Client:     trellis ${v.client}`];
  if (v.kubernetes) lines.push(`Kubernetes: ${v.kubernetes}`);
  if (v.kubernetes) lines.push(`Operator:   ${v.operator ?? "not found"}`);
  for (const m of v.meshes ?? [])
    lines.push(
      `Mesh ${m.name}: control plane ${m.version ?? "not installed"}, proxies ${m.proxyVersion ?? "?"} (${m.proxies ?? "0/0"} up to date)`,
    );
  return `${lines.join("\n")}\n`;
}

export const versionCommand: CommandSpec = {
  path: ["version"],
  summary: "print the version of this command, the operator, the mesh and Kubernetes",
  flags: {
    client: { type: "boolean", description: "print only this command's version; do not contact the cluster" },
  },
  examples: ["version", "version --client -o json"],
  async run(inv) {
    const report: VersionReport = { client: OPERATOR_VERSION };
    const format = formatOf(inv.flags);
    const print = () => inv.io.out(format === "table" ? renderVersion(report) : renderData(report, format));
    if (inv.flags.client === true) {
      print();
      return EXIT.ok;
    }
    let cluster: ReturnType<typeof inv.cluster>;
    try {
      cluster = inv.cluster();
      report.kubernetes = await serverVersion(cluster);
    } catch (err) {
      print();
      throw err;
    }
    const meshes = (await listIfAllowed<Mesh & KubernetesObject>(cluster.client, TYPES.mesh)) ?? [];
    const operator = await gatherOperator(cluster);
    const fromStatus = meshes.find((m) => m.status?.operatorVersion)?.status?.operatorVersion;
    const version = operator?.deployments[0]?.version ?? fromStatus;
    if (version) report.operator = version;
    report.meshes = meshes.map((m) => ({
      name: m.metadata?.name ?? "",
      ...(m.status?.version ? { version: m.status.version } : {}),
      ...(m.status?.proxies?.version ? { proxyVersion: m.status.proxies.version } : {}),
      ...(m.status?.proxies?.summary ? { proxies: m.status.proxies.summary } : {}),
    }));
    print();
    return EXIT.ok;
  },
};
