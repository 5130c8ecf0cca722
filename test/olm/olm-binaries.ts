// Where OLM (olm, catalog), opm and our bundle validator are: hack/build-olm.sh builds them from
// Go modules into ~/.cache/trellis when missing (the validator also when its source changed) and
// prints their folders and where OLM's CRDs are. Also runs them for tests, returning exit code and output.
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../cluster/binaries.ts";

export interface OlmBinaries {
  olm: string;
  catalog: string;
  opm: string;
  validate: string;
  /** OLM's CRDs (operators.coreos.com_*.yaml) in the Go module cache. */
  crds: string;
}

let cached: OlmBinaries | undefined;

export function olmBinaries(): OlmBinaries {
  if (cached) return cached;
  const out = execFileSync("bash", [join(repoRoot, "hack/build-olm.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [olmDir, opmDir, validateDir, crds] = out.trim().split("\n").slice(-4);
  if (!olmDir || !opmDir || !validateDir || !crds) throw new Error(`hack/build-olm.sh printed ${out}`);
  cached = {
    olm: join(olmDir, "olm"),
    catalog: join(olmDir, "catalog"),
    opm: join(opmDir, "opm"),
    validate: join(validateDir, "olm-validate"),
    crds,
  };
  return cached;
}

/** Runs a binary to completion: exit code and combined output (never throws on a non-zero exit). */
export function run(command: string, args: string[]): { code: number; output: string } {
  const r = spawnSync(command, args, { encoding: "utf8", cwd: repoRoot });
  return { code: r.status ?? -1, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}
