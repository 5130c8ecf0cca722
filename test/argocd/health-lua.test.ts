// Trellis's Argo CD health checks, run by Argo CD's own Lua VM (util/lua on gopher-lua, built as
// argocd-health by hack/build-argocd.sh) on every case of each kind's health_test.yaml, the file
// layout Argo CD's own resource customizations use.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { argocdHealthBinary } from "./argocd-processes.ts";

const root = fileURLToPath(new URL("../../argocd/resource_customizations/trellis.dev", import.meta.url));

/** What Argo CD's application controller makes of each object with this health.lua. */
function runHealth(script: string, objects: unknown[]): Array<{ status: string; message: string }> {
  const out = execFileSync(argocdHealthBinary(), [script], {
    input: JSON.stringify(objects),
    encoding: "utf8",
  });
  return JSON.parse(out) as Array<{ status: string; message: string }>;
}

interface HealthTest {
  tests: Array<{ healthStatus: { status: string; message: string }; inputPath: string }>;
}

for (const kind of readdirSync(root)) {
  describe(`Argo CD health of ${kind}`, () => {
    const dir = join(root, kind);
    const { tests } = parse(readFileSync(join(dir, "health_test.yaml"), "utf8")) as HealthTest;
    it("covers every file in testdata/", () => {
      assert.deepEqual(
        readdirSync(join(dir, "testdata")).sort(),
        tests.map((t) => t.inputPath.replace("testdata/", "")).sort(),
      );
    });
    it("gives each case its status and message in Argo CD's Lua VM", () => {
      const objects = tests.map((t) => parse(readFileSync(join(dir, t.inputPath), "utf8")));
      const results = runHealth(join(dir, "health.lua"), objects);
      tests.forEach((t, i) => {
        assert.deepEqual(results[i], t.healthStatus, `${t.inputPath} → ${t.healthStatus.status}`);
      });
    });
  });
}
