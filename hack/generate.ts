// Regenerates every generated artefact committed in the repository (today: crds/).
// Usage: npm run generate
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderCrdFiles } from "../api/crd.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));

const crds = join(repoRoot, "crds");
mkdirSync(crds, { recursive: true });
for (const [name, yaml] of renderCrdFiles()) {
  writeFileSync(join(crds, name), yaml);
  console.log(`wrote crds/${name}`);
}
