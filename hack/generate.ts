// Regenerates every generated artefact committed in the repository (crds/, deploy/, olm/).
// Usage: npm run generate
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { generatedFiles } from "./generated-files.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
for (const [path, content] of generatedFiles()) {
  mkdirSync(dirname(join(repoRoot, path)), { recursive: true });
  writeFileSync(join(repoRoot, path), content);
  console.log(`wrote ${path}`);
}
