// The catalog's upgrade policy and release bookkeeping: replaces the newest earlier release in a
// channel, skipRange over the same and previous minor, earlier releases kept as published.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { OPERATOR_CLUSTER_RULES, OPERATOR_NAMESPACE_RULES, policyRules } from "./install-manifests.ts";
import {
  type CatalogDoc,
  defaultChannels,
  parseCatalog,
  stringifyCatalog,
  upgradeEdge,
  withRelease,
} from "./olm-bundle-catalog.ts";
import { renderClusterServiceVersion } from "./olm-bundle-csv.ts";

const entries = (...versions: string[]) => versions.map((v) => ({ name: `trellis.v${v}` }));

describe("upgrade edges", () => {
  const cases: Array<[string, string[], string, { replaces?: string; skipRange?: string }]> = [
    ["first release", [], "0.1.0", {}],
    ["patch", ["0.1.0"], "0.1.1", { replaces: "trellis.v0.1.0", skipRange: ">=0.0.0 <0.1.1" }],
    [
      "minor after patches",
      ["1.2.0", "1.2.3", "1.2.1"],
      "1.3.0",
      { replaces: "trellis.v1.2.3", skipRange: ">=1.2.0 <1.3.0" },
    ],
    [
      "pre-release",
      ["1.3.0"],
      "1.4.0-rc.1",
      { replaces: "trellis.v1.3.0", skipRange: ">=1.3.0 <1.4.0-rc.1" },
    ],
  ];
  for (const [what, existing, version, expected] of cases) {
    it(what, () => {
      assert.deepEqual(upgradeEdge(entries(...existing), version), {
        name: `trellis.v${version}`,
        ...expected,
      });
    });
  }
  it("refuses a release older than the channel's head (one head per channel)", () => {
    assert.throws(() => upgradeEdge(entries("1.2.0", "1.3.0"), "1.2.1"), /older than 1\.3\.0/);
  });
  it("pre-releases go to candidate only", () => {
    assert.deepEqual(defaultChannels("1.4.0-rc.1"), ["candidate"]);
    assert.deepEqual(defaultChannels("1.4.0"), ["candidate", "stable"]);
  });
});

describe("catalog releases", () => {
  const registry = "example.com/trellis";
  it("keeps earlier bundles as published and appends to the named channels", () => {
    const first = withRelease([], { version: "0.1.0", registry }, ["candidate", "stable"]).docs;
    // A published entry must survive even when today's generator would render it differently.
    const published = first.map((d) =>
      d.schema === "olm.bundle" ? { ...d, image: "published@sha256:1" } : d,
    );
    const { docs, release } = withRelease(published, { version: "0.2.0-rc.1", registry }, ["candidate"]);
    const channel = (name: string) => docs.find((d) => d.schema === "olm.channel" && d.name === name);
    assert.deepEqual(channel("stable"), {
      schema: "olm.channel",
      package: "trellis",
      name: "stable",
      entries: entries("0.1.0"),
    });
    assert.deepEqual(channel("candidate")?.schema === "olm.channel" && channel("candidate"), {
      schema: "olm.channel",
      package: "trellis",
      name: "candidate",
      entries: [
        ...entries("0.1.0"),
        { name: "trellis.v0.2.0-rc.1", replaces: "trellis.v0.1.0", skipRange: ">=0.1.0 <0.2.0-rc.1" },
      ],
    });
    const bundles = docs.filter(
      (d): d is Extract<CatalogDoc, { schema: "olm.bundle" }> => d.schema === "olm.bundle",
    );
    assert.deepEqual(
      bundles.map((b) => [b.name, b.image]),
      [
        ["trellis.v0.1.0", "published@sha256:1"],
        ["trellis.v0.2.0-rc.1", "example.com/trellis/operator-bundle:v0.2.0-rc.1"],
      ],
    );
    assert.equal(release.replaces, "trellis.v0.1.0");
    assert.deepEqual(parseCatalog(stringifyCatalog(docs)), docs);
  });
  it("re-rendering the same version is idempotent", () => {
    const once = withRelease([], { version: "0.1.0", registry }, ["stable"]).docs;
    assert.deepEqual(withRelease(once, { version: "0.1.0", registry }, ["stable"]).docs, once);
  });
});

describe("ClusterServiceVersion", () => {
  const csv = renderClusterServiceVersion({ version: "0.3.0", registry: "quay.io/x/" }) as {
    spec: {
      install: {
        spec: { clusterPermissions: Array<{ rules: unknown }>; permissions: Array<{ rules: unknown }> };
      };
      installModes: Array<{ type: string; supported: boolean }>;
      relatedImages: Array<{ name: string; image: string }>;
    };
  };
  it("asks for exactly the operator's RBAC", () => {
    assert.deepEqual(csv.spec.install.spec.clusterPermissions[0]?.rules, policyRules(OPERATOR_CLUSTER_RULES));
    assert.deepEqual(csv.spec.install.spec.permissions[0]?.rules, policyRules(OPERATOR_NAMESPACE_RULES));
  });
  it("installs in all namespaces only", () => {
    assert.deepEqual(
      csv.spec.installModes.filter((m) => m.supported).map((m) => m.type),
      ["AllNamespaces"],
    );
  });
  it("names every image from the one registry setting", () => {
    assert.deepEqual(
      csv.spec.relatedImages.map((i) => i.image),
      [
        "quay.io/x/operator:0.3.0",
        "quay.io/x/controlplane:1.0.0",
        "quay.io/x/init:1.0.0",
        "quay.io/x/cni:1.0.0",
        "quay.io/x/proxy:1.0.0",
      ],
    );
  });
});
