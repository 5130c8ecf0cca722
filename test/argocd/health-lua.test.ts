// Trellis's Argo CD health checks, run by a real Lua interpreter (lua5.4) on every case of
// each kind's health_test.yaml, the file layout Argo CD's own resource customizations use.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const root = fileURLToPath(new URL("../../argocd/resource_customizations/trellis.dev", import.meta.url));

/** A Lua table constructor for a JSON value (what Argo CD hands to health.lua as `obj`). */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return "nil";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(",")}}`;
  const fields = Object.entries(value as Record<string, unknown>).map(
    ([k, v]) => `[${JSON.stringify(k)}]=${luaLiteral(v)}`,
  );
  return `{${fields.join(",")}}`;
}

function runHealth(script: string, obj: unknown): { status: string; message: string } {
  const program = `obj = ${luaLiteral(obj)}
local hs = dofile(${JSON.stringify(script)})
io.write(hs.status, "\\n", hs.message or "")`;
  const out = execFileSync("lua5.4", ["-e", program], { encoding: "utf8" });
  const [status = "", ...message] = out.split("\n");
  return { status, message: message.join("\n") };
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
    for (const t of tests) {
      it(`${t.inputPath} → ${t.healthStatus.status}`, () => {
        const obj = parse(readFileSync(join(dir, t.inputPath), "utf8"));
        assert.deepEqual(runHealth(join(dir, "health.lua"), obj), t.healthStatus);
      });
    }
  });
}
