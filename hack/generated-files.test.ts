// Generated files must match their sources: a stale one fails here (fix: npm run generate).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { generatedFiles } from "./generated-files.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

describe("generated files", () => {
  const files = generatedFiles();
  for (const [path, content] of files) {
    it(`${path} is up to date`, () => {
      assert.ok(existsSync(join(repoRoot, path)), `${path} is missing; run npm run generate`);
      assert.equal(
        readFileSync(join(repoRoot, path), "utf8"),
        content,
        `${path} is stale; run npm run generate`,
      );
    });
  }
  it("olm/ holds nothing that is not generated", () => {
    const walk = (dir: string): string[] =>
      readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`],
      );
    for (const f of walk("olm")) assert.ok(files.has(f), `${f} is not generated`);
  });
  it("crds/ holds nothing that is not generated", () => {
    for (const f of readdirSync(join(repoRoot, "crds")))
      assert.ok(files.has(`crds/${f}`), `crds/${f} is not generated`);
  });
});
