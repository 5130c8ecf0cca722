// Produces the OLM release artefacts of one operator version: its bundle (manifests/,
// metadata/, bundle.Dockerfile) and the file-based catalog with this release added to the
// catalog of earlier releases, ready for `opm validate` and `opm serve` or a catalog image.
//
// Usage: npx tsx hack/olm-release.ts --version 0.2.0 --out dist/olm
//          [--channels candidate[,stable]]   default: candidate,stable (pre-releases: candidate)
//          [--registry quay.io/example]      image registry and path prefix (default localhost/trellis)
//          [--catalog olm/catalog/trellis/catalog.yaml]  the catalog of earlier releases
// Writes <out>/bundle/<version>/… and <out>/catalog/trellis/catalog.yaml.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import semver from "semver";
import { OLM_CATALOG_PATH, renderRelease } from "../operator/olm-bundle.ts";
import { CHANNELS, type Channel } from "../operator/olm-bundle-catalog.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({
  options: {
    version: { type: "string" },
    out: { type: "string" },
    channels: { type: "string" },
    registry: { type: "string" },
    catalog: { type: "string", default: join(repoRoot, OLM_CATALOG_PATH) },
  },
  strict: true,
});
if (!values.version || !semver.valid(values.version) || !values.out) {
  console.error(
    "usage: olm-release.ts --version <semver> --out <dir> [--channels a,b] [--registry r] [--catalog file]",
  );
  process.exit(2);
}
const channels = values.channels?.split(",").map((c) => c.trim());
for (const c of channels ?? []) {
  if (!(CHANNELS as readonly string[]).includes(c)) {
    console.error(`unknown channel ${c}; channels are ${CHANNELS.join(", ")}`);
    process.exit(2);
  }
}
const previousCatalog =
  values.catalog && existsSync(values.catalog) ? readFileSync(values.catalog, "utf8") : undefined;
const { files, release } = renderRelease({
  version: values.version,
  channels: channels as Channel[] | undefined,
  registry: values.registry,
  previousCatalog,
});
for (const [path, content] of files) {
  const target = join(values.out, path.replace(/^bundle\//, `bundle/${values.version}/`));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, content);
}
console.log(
  `trellis.v${release.version}: bundle in ${join(values.out, "bundle", release.version)}, catalog in ${join(values.out, "catalog")}` +
    (release.replaces ? ` (replaces ${release.replaces}, skipRange "${release.skipRange}")` : ""),
);
