// Golden files for the control-plane rendering: one input Mesh per case in testdata/, the
// rendered objects beside it. Regenerate with UPDATE_GOLDEN=1.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import { assertGolden } from "../../test/golden.ts";
import { renderControlPlane } from "./render.ts";

const testdata = fileURLToPath(new URL("./testdata", import.meta.url));
const BUNDLE = "-----BEGIN CERTIFICATE-----\nMIIB...anchor\n-----END CERTIFICATE-----\n";

interface Case {
  metadata: { name: string; uid: string };
  spec: unknown;
  versions?: string[];
}

function render(c: Case) {
  const checked = validateMeshSpec(c.spec);
  assert.ok(checked.ok, checked.errors.join("; "));
  const spec: MeshSpec = checked.value;
  return renderControlPlane({
    mesh: { ...c.metadata, spec },
    operatorVersion: "0.1.0",
    versions: c.versions ?? [spec.version],
    trustBundlePem: BUNDLE,
    injectorCaBundle: "Q0EgYnVuZGxl",
  });
}

describe("control-plane rendering", () => {
  for (const file of readdirSync(testdata).filter((f) => f.endsWith(".mesh.yaml"))) {
    it(`renders ${file}`, () => {
      const input = parse(readFileSync(join(testdata, file), "utf8")) as Case;
      const docs = render(input).map((o) => stringify(o, { lineWidth: 0 }));
      assertGolden(join(testdata, file.replace(".mesh.yaml", ".golden.yaml")), docs.join("---\n"));
    });
  }

  it("is deterministic and selects only the active revision", () => {
    const input = parse(readFileSync(join(testdata, "ha.mesh.yaml"), "utf8")) as Case;
    assert.deepEqual(render(input), render(input));
    const objects = render(input);
    const deployments = objects.filter((o) => o.kind === "Deployment").map((o) => o.metadata.name);
    assert.deepEqual(deployments.sort(), [
      "trellis-destination-v1-1-0",
      "trellis-destination-v1-2-0",
      "trellis-identity-v1-1-0",
      "trellis-identity-v1-2-0",
      "trellis-injector-v1-1-0",
      "trellis-injector-v1-2-0",
    ]);
    for (const svc of objects.filter((o) => o.kind === "Service")) {
      assert.equal(
        (svc.spec as { selector: Record<string, string> }).selector["trellis.dev/revision"],
        "v1-1-0",
      );
    }
    assert.equal(objects.filter((o) => o.kind === "PodDisruptionBudget").length, 3);
  });

  it("grants no wildcard and no write outside what each component needs", () => {
    const input = parse(readFileSync(join(testdata, "default.mesh.yaml"), "utf8")) as Case;
    for (const role of render(input).filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
      for (const rule of role.rules as Array<{ verbs: string[]; resources: string[] }>) {
        assert.ok(
          !rule.verbs.includes("*") && !rule.resources.includes("*"),
          `${role.metadata.name} has a wildcard`,
        );
        const writes = rule.verbs.filter((v) => !["get", "list", "watch"].includes(v));
        for (const w of writes)
          assert.ok(
            ["tokenreviews", "events"].some((r) => rule.resources.includes(r)) ||
              // the identity service writes proxies' trust reports onto their pods
              (role.metadata.name === "trellis-identity" &&
                w === "patch" &&
                rule.resources.join() === "pods"),
            `${role.metadata.name} may ${w}`,
          );
      }
    }
  });
});
