// What a user would compare before and after an operator upgrade or uninstall: every
// Certificate's issuance (revision, fingerprint) and its Secret's resourceVersion, the
// control-plane Deployments' generations, and the identity of every Mesh, ServiceProfile and
// Certificate. Also: the operator's log lines that show a permission it lacks, and the install
// YAML as README.md gives it to users.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../cluster/binaries.ts";
import type { LocalCluster } from "../cluster/local-cluster.ts";
import type { OperatorProcess } from "../operator-process.ts";

interface Item {
  metadata: { name: string; namespace?: string; uid: string; resourceVersion: string; generation?: number };
  spec?: { secretName?: string };
  status?: { revision?: number; fingerprint?: string };
}

export interface MeshSnapshot {
  /** ns/name → "revision fingerprint" of each Certificate. */
  issuance: Record<string, string>;
  /** ns/name → resourceVersion of each Certificate's Secret. */
  secrets: Record<string, string>;
  /** name → generation of each control-plane Deployment. */
  deployments: Record<string, number>;
  /** kind/ns/name → uid of every Mesh, ServiceProfile and Certificate. */
  objects: Record<string, string>;
}

export function snapshotMesh(cluster: LocalCluster): MeshSnapshot {
  const list = (args: string[]) =>
    (JSON.parse(cluster.kubectl([...args, "-o", "json"])) as { items: Item[] }).items;
  const key = (i: Item) => `${i.metadata.namespace ?? ""}/${i.metadata.name}`;
  const certificates = list(["get", "certificates", "-A"]);
  const snapshot: MeshSnapshot = { issuance: {}, secrets: {}, deployments: {}, objects: {} };
  for (const c of certificates) {
    snapshot.issuance[key(c)] = `${c.status?.revision} ${c.status?.fingerprint}`;
    const secret = list([
      "-n",
      c.metadata.namespace ?? "",
      "get",
      "secrets",
      "--field-selector",
      `metadata.name=${c.spec?.secretName}`,
    ])[0];
    snapshot.secrets[`${c.metadata.namespace}/${c.spec?.secretName}`] =
      secret?.metadata.resourceVersion ?? "missing";
  }
  for (const d of list(["-n", "trellis-system", "get", "deployments"])) {
    snapshot.deployments[d.metadata.name] = d.metadata.generation ?? 0;
  }
  for (const kind of ["meshes", "serviceprofiles", "certificates"]) {
    for (const o of list(["get", kind, "-A"])) snapshot.objects[`${kind}/${key(o)}`] = o.metadata.uid;
  }
  return snapshot;
}

/** Log lines of the operator that show the API server refusing it (a permission missing from the CSV). */
export async function forbiddenLines(operator: OperatorProcess): Promise<string[]> {
  return (await operator.logs())
    .map((l) => JSON.stringify(l))
    .filter((l) => /forbidden|\b403\b|cannot (get|list|watch|create|update|patch|delete)/i.test(l));
}

/** The YAML of README.md's "Install from OperatorHub" section, exactly as users copy it. */
export function readmeSubscriptionYaml(): string {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("Install from OperatorHub"));
  const yaml = section?.match(/```yaml\n([\s\S]*?)```/)?.[1];
  if (!yaml) throw new Error('README.md has no yaml block under "## Install from OperatorHub"');
  return yaml;
}
