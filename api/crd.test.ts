// crds/ is generated from api/: a stale file fails here (regenerate with `npm run generate`).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { renderCrdFiles } from "./crd.ts";

const crdDir = fileURLToPath(new URL("../crds", import.meta.url));

describe("crds/", () => {
  it("matches what api/ generates", () => {
    const expected = renderCrdFiles();
    const actual = readdirSync(crdDir).filter((f) => f.endsWith(".yaml"));
    assert.deepEqual(
      actual.sort(),
      [...expected.keys()].sort(),
      "the set of CRD files; run npm run generate",
    );
    for (const [name, yaml] of expected) {
      assert.equal(
        readFileSync(join(crdDir, name), "utf8"),
        yaml,
        `crds/${name} is stale; run npm run generate`,
      );
    }
  });
});
