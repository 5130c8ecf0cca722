// pki is the bottom layer shared by operator, control plane and proxy: its modules may import only
// each other and node builtins. Test support under pki/testing/ is exempt and never imported by them.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const modules = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));
const IMPORT = /^\s*(?:import|export)\b[^'"]*?from\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']/gm;

test("pki modules import only node builtins and each other", () => {
  assert.ok(modules.includes("index.ts"));
  for (const file of modules) {
    const source = readFileSync(`${dir}/${file}`, "utf8");
    for (const match of source.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? "";
      const sibling = /^\.\/[a-z0-9-]+\.ts$/.test(specifier);
      assert.ok(sibling || specifier.startsWith("node:"), `${file} imports ${specifier}`);
    }
  }
});
