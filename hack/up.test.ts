// The run command as a newcomer meets it: `npm run up` (here with --exit-when-ready) brings up the
// local cluster with its real node, the control plane in pods from the images it builds, and the
// meshed demo app, whose pods run the app beside an injected proxy.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { repoRoot } from "../test/cluster/binaries.ts";

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "hack/up.ts", ...args], {
      cwd: repoRoot,
      env: { ...process.env, TRELLIS_NODES: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d;
    });
    child.on("exit", (code) => resolve({ code, out }));
  });
}

describe("npm run up", { timeout: 600_000 }, () => {
  it("starts the real node with the control plane and a meshed demo app in real pods", async (t) => {
    const started = Date.now();
    const { code, out } = await run(["--exit-when-ready"]);
    t.diagnostic(`ready and stopped in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(code, 0, out.slice(-4000));
    assert.match(out, /default\s+0\.1\.0\s+True/, "kubectl get meshes shows the Mesh Ready");
    const demoPods = out.split("\n").filter((l) => /^(client|server)-\S+\s+2\/2\s+Running/.test(l));
    assert.equal(demoPods.length, 4, out.slice(-4000));
    assert.ok(demoPods.every((l) => l.includes("trellis-real-node")));
    assert.match(out, /The control plane runs as pods on the real node/);
    assert.match(
      out,
      /^ {2}export PATH="\/\S+\/bin:\$PATH" KUBECONFIG="\/\S+\/kubeconfig"$/m,
      "one line for the shell",
    );
    assert.match(out, /^ {2}kubectl trellis check --proxies/m, "short names after it");
  });
});
