// Control-plane revisions: each mesh version runs as its own revision of Deployments, so an
// upgrade can bring the new one up beside the old and switch only once it is healthy.

/** A DNS-label-safe revision name for a version: 1.2.0 → v1-2-0, 1.3.0-rc.1 → v1-3-0-rc-1. */
export function revisionName(version: string): string {
  const label = `v${version}`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/-+$/, "");
  return label.slice(0, 40);
}
