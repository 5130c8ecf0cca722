// What this build of the operator is, and the one place where a mesh version becomes image
// references (control plane and proxy).
import pkg from "../package.json" with { type: "json" };

export const OPERATOR_VERSION = process.env.TRELLIS_OPERATOR_VERSION ?? pkg.version;

export interface MeshImages {
  controlPlane: string;
  proxy: string;
}

/** Image references for a mesh version: <registry>/controlplane:<version> and <registry>/proxy:<proxy version>. */
export function meshImages(
  registry: string,
  version: string,
  proxy?: { image?: string; version?: string },
): MeshImages {
  const base = registry.replace(/\/+$/, "");
  return {
    controlPlane: `${base}/controlplane:${version}`,
    proxy: `${proxy?.image ?? `${base}/proxy`}:${proxy?.version ?? version}`,
  };
}
