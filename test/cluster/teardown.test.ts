// No orphans: whether the owner of a cluster stops on SIGTERM or dies on SIGKILL, every
// process of the cluster ends; on SIGTERM its temporary data is removed too.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { repoRoot } from "./binaries.ts";
import { waitFor } from "./local-cluster.ts";
import { isRunning } from "./processes.ts";

interface Started {
  pids: number[];
  dir: string;
  owner: number;
}

async function startOwner(): Promise<Started> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/cluster/cluster-cli.ts"], {
    cwd: repoRoot,
    env: { ...process.env, NODES: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`cluster owner exited early (${code})`)));
  });
  const { pids, dir } = JSON.parse(line) as { pids: number[]; dir: string };
  return { pids, dir, owner: child.pid as number };
}

describe("local cluster teardown", { timeout: 180_000 }, () => {
  it("SIGTERM to the owner stops every cluster process and removes its data", async () => {
    const { pids, dir, owner } = await startOwner();
    assert.ok(pids.length >= 5, `expected etcd, apiserver, controllers and kwok, got ${pids.length} pids`);
    assert.ok(pids.every(isRunning));
    process.kill(owner, "SIGTERM");
    await waitFor(
      async () => !isRunning(owner) && pids.every((p) => !isRunning(p)),
      30_000,
      "processes to exit",
    );
    assert.equal(existsSync(dir), false, "temporary data removed");
  });

  it("SIGKILL to the owner still leaves no cluster process behind", async () => {
    const { pids, owner } = await startOwner();
    process.kill(owner, "SIGKILL");
    await waitFor(async () => pids.every((p) => !isRunning(p)), 15_000, "orphans to be killed by PDEATHSIG");
  });
});
