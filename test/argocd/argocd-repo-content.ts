// What the GitOps tests commit: the recommended repository layout of docs/examples/gitops/,
// read from there so that the documented layout is the tested one. The Mesh is rendered with
// the version and deadline a test step needs; the shop team's files are used as they are.
// Does not own: git (argocd-git.ts) or Argo CD.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, parseAllDocuments, stringify } from "yaml";

export const gitopsExampleDir = fileURLToPath(new URL("../../docs/examples/gitops", import.meta.url));
export const installManifestPath = fileURLToPath(new URL("../../deploy/trellis.yaml", import.meta.url));

interface MeshOptions {
  version: string;
  controlPlaneDeadline?: string;
  labels?: Record<string, string>;
  paused?: boolean;
}

interface MeshDocument {
  metadata: { labels?: Record<string, string> };
  spec: { version: string; upgrade?: { controlPlaneDeadline?: string; paused?: boolean } };
}

/** docs/examples/gitops/trellis/mesh.yaml with the given version (and deadline, labels). */
export function meshManifest(o: MeshOptions): string {
  const mesh = parse(readFileSync(join(gitopsExampleDir, "trellis/mesh.yaml"), "utf8")) as MeshDocument;
  mesh.spec.version = o.version;
  if (o.controlPlaneDeadline)
    mesh.spec.upgrade = { ...mesh.spec.upgrade, controlPlaneDeadline: o.controlPlaneDeadline };
  if (o.paused !== undefined) mesh.spec.upgrade = { ...mesh.spec.upgrade, paused: o.paused };
  if (o.labels) mesh.metadata.labels = { ...mesh.metadata.labels, ...o.labels };
  return stringify(mesh);
}

/** The shop team's files of docs/examples/gitops/teams/shop, as [file name, text]. */
export function shopManifests(): Array<[string, string]> {
  const dir = join(gitopsExampleDir, "teams/shop");
  return readdirSync(dir)
    .sort()
    .map((f) => [f, readFileSync(join(dir, f), "utf8")]);
}

/** [kind, name, namespace] of every Trellis object the users own in the example. */
export const userObjects: Array<[string, string, string | undefined]> = (() => {
  const objects: Array<[string, string, string | undefined]> = [["Mesh", "default", undefined]];
  for (const [, text] of shopManifests()) {
    for (const doc of parseAllDocuments(text)) {
      const o = doc.toJS() as {
        apiVersion: string;
        kind: string;
        metadata: { name: string; namespace?: string };
      };
      if (o.apiVersion.startsWith("trellis.dev/"))
        objects.push([o.kind, o.metadata.name, o.metadata.namespace]);
    }
  }
  return objects;
})();
