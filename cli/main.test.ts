// The command line's grammar and failure handling, without a cluster: help on every command,
// exit status 2 for bad input, one line (never a stack trace) for every failure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Io } from "./command-line.ts";
import { COMMANDS, programName, runCli } from "./main.ts";

async function run(argv: string[], env: NodeJS.ProcessEnv = { HOME: "/nonexistent" }) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => (out += t), err: (t) => (err += t), isTTY: false, env };
  const code = await runCli(argv, io, "kubectl trellis");
  return { code, out, err };
}

describe("kubectl trellis command line", () => {
  it("prints help for every command with exit 0, and lists every command", async () => {
    const top = await run(["--help"]);
    assert.equal(top.code, 0);
    for (const c of COMMANDS) {
      assert.ok(top.out.includes(c.path.join(" ")), c.path.join(" "));
      const r = await run([...c.path, "--help"]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, new RegExp(`Usage: kubectl trellis ${c.path.join(" ")}`));
      assert.match(r.out, /-h, --help/);
    }
  });

  it("refuses unknown commands, unknown flags, missing values and extra arguments with exit 2", async () => {
    for (const argv of [
      ["frobnicate"],
      ["check", "--frob"],
      ["check", "-o"],
      ["check", "extra"],
      ["check", "-o", "xml"],
      [],
    ]) {
      const r = await run(argv);
      assert.equal(r.code, 2, `${argv.join(" ")}: ${r.err}`);
      assert.equal(r.out, "");
      if (argv.length > 0) assert.equal(r.err.trim().split("\n").length, 1, r.err);
    }
    assert.match(
      (await run(["check", "--frob"])).err,
      /unknown flag --frob \(see kubectl trellis check --help\)/,
    );
    assert.match((await run(["check", "-o"])).err, /needs a value/);
  });

  it("says in one line, exit 1, that no cluster is reachable", async () => {
    const none = await run(["check"]);
    assert.equal(none.code, 1);
    assert.match(none.err, /^kubectl trellis check: no cluster reachable: no kubeconfig/);
    const bad = await run(["check", "--kubeconfig", "/nonexistent/kubeconfig"]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /cannot read kubeconfig \/nonexistent\/kubeconfig: ENOENT/);
  });

  it("knows it runs as a kubectl plugin from its file name", () => {
    assert.equal(programName("/usr/local/bin/kubectl-trellis"), "kubectl trellis");
    assert.equal(programName("/x/dist/kubectl-trellis.mjs"), "kubectl trellis");
    assert.equal(programName("/x/bin/trellis.ts"), "trellis");
  });

  it("prints its own version without a cluster", async () => {
    const r = await run(["version", "--client", "-o", "json"]);
    assert.equal(r.code, 0);
    assert.match(JSON.parse(r.out).client, /^\d+\.\d+\.\d+/);
  });
});
