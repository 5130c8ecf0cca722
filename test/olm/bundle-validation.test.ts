// The OLM bundle and catalog pass operator-framework's own checks: the bundle validators that
// `operator-sdk bundle validate` runs (default, OperatorHub v2, good practices; through our
// hack/olm-validate) with zero errors, and `opm validate` on the catalog, both for the committed
// olm/ and for a next release added to it by hack/olm-release.ts. The catalog's olm.bundle entry
// is checked against what `opm render` derives from the bundle directory itself.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse } from "yaml";
import { repoRoot } from "../cluster/binaries.ts";
import { type OlmBinaries, olmBinaries, run } from "./olm-binaries.ts";

interface Csv {
  kind: string;
  metadata: { annotations: Record<string, string>; labels: Record<string, string> };
  spec: Record<string, unknown>;
}

/** `value` with its keys in the order of `like` (deepEqual ignores key order; this keeps diffs readable). */
function sortKeys(value: Record<string, unknown>, like: unknown): Record<string, unknown> {
  const order = Object.keys((like ?? {}) as Record<string, unknown>);
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)));
}

interface Bundle {
  schema: string;
  name: string;
  image: string;
  properties: Array<{ type: string; value: unknown }>;
  relatedImages: Array<{ name: string; image: string }>;
}

describe("OLM bundle and catalog validation", { timeout: 900_000 }, () => {
  let bins: OlmBinaries;
  let dir: string;

  before(() => {
    bins = olmBinaries();
    dir = mkdtempSync(join(tmpdir(), "trellis-olm-release-"));
    execFileSync(
      process.execPath,
      ["--import", "tsx", "hack/olm-release.ts", "--version", "0.1.1", "--out", dir],
      { cwd: repoRoot, stdio: "pipe" },
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [what, bundle] of [
    ["the committed bundle (olm/bundle)", () => join(repoRoot, "olm/bundle")],
    ["a next release that replaces it", () => join(dir, "bundle/0.1.1")],
  ] as const) {
    it(`operator-framework validators accept ${what} with zero errors`, (t) => {
      const r = run(bins.validate, ["-k8s-version", "1.36", bundle()]);
      t.diagnostic(r.output.trim());
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, /, 0 error\(s\)/);
    });
  }

  for (const [what, catalog] of [
    ["the committed catalog", () => join(repoRoot, "olm/catalog")],
    ["the catalog with two releases", () => join(dir, "catalog")],
  ] as const) {
    it(`opm validate accepts ${what}`, () => {
      const r = run(bins.opm, ["validate", catalog()]);
      assert.equal(r.code, 0, r.output);
    });
  }

  it("the catalog's olm.bundle entry is what opm renders from the bundle directory", () => {
    const r = run(bins.opm, ["render", join(repoRoot, "olm/bundle"), "-o", "yaml"]);
    assert.equal(r.code, 0, r.output);
    const rendered = parse(r.output) as Bundle;
    const catalog = readFileSync(join(repoRoot, "olm/catalog/trellis/catalog.yaml"), "utf8")
      .split(/^---$/m)
      .map((d) => parse(d) as Bundle)
      .find((d) => d.schema === "olm.bundle" && d.name === rendered.name);
    assert.ok(catalog, `catalog has no olm.bundle ${rendered.name}`);
    const values = (b: Bundle, type: string) =>
      b.properties.filter((p) => p.type === type).map((p) => p.value);
    for (const type of ["olm.gvk", "olm.package"]) {
      assert.deepEqual(
        new Set(values(catalog, type).map((v) => JSON.stringify(v))),
        new Set(values(rendered, type).map((v) => JSON.stringify(v))),
        type,
      );
    }
    // opm keeps whole objects (olm.bundle.object); the catalog carries the CSV's metadata
    // (olm.csv.metadata), which is what opm's bundle-object-to-csv-metadata migration derives.
    const csv = values(rendered, "olm.bundle.object")
      .map((v) => JSON.parse(Buffer.from((v as { data: string }).data, "base64").toString()) as Csv)
      .find((o) => o.kind === "ClusterServiceVersion");
    assert.ok(csv);
    const { spec, metadata } = csv;
    assert.deepEqual(
      values(catalog, "olm.csv.metadata"),
      [
        {
          annotations: metadata.annotations,
          labels: metadata.labels,
          crdDescriptions: spec.customresourcedefinitions,
          description: spec.description,
          displayName: spec.displayName,
          installModes: spec.installModes,
          keywords: spec.keywords,
          links: spec.links,
          maintainers: spec.maintainers,
          maturity: spec.maturity,
          minKubeVersion: spec.minKubeVersion,
          provider: spec.provider,
        },
      ].map((m) => sortKeys(m, values(catalog, "olm.csv.metadata")[0])),
    );
    // opm leaves the image empty for a directory; the catalog names the bundle image.
    assert.deepEqual(
      new Set(catalog.relatedImages.map((i) => i.image).filter((i) => i !== catalog.image)),
      new Set(rendered.relatedImages.map((i) => i.image).filter(Boolean)),
    );
  });

  it("metadata/annotations.yaml is a registry+v1 bundle of package trellis", () => {
    const { annotations } = parse(
      readFileSync(join(repoRoot, "olm/bundle/metadata/annotations.yaml"), "utf8"),
    ) as {
      annotations: Record<string, string>;
    };
    assert.equal(annotations["operators.operatorframework.io.bundle.mediatype.v1"], "registry+v1");
    assert.equal(annotations["operators.operatorframework.io.bundle.package.v1"], "trellis");
    assert.equal(annotations["operators.operatorframework.io.bundle.channel.default.v1"], "stable");
  });
});
