// Golden files: the expected output of a rendering, committed beside its test.
// Regenerate every golden file with:  UPDATE_GOLDEN=1 npm test   (then review the diff)
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export function assertGolden(path: string, actual: string): void {
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `golden file ${path} is missing; run with UPDATE_GOLDEN=1 to create it`);
  assert.equal(
    actual,
    readFileSync(path, "utf8"),
    `${path} differs; if the change is intended, run with UPDATE_GOLDEN=1`,
  );
}
