// The trellis program, also run by kubectl as its `trellis` plugin (kubectl-trellis):
// `operator` runs the operator; `validate` checks files offline; every other command is the
// command line in cli/ (check, upgrade plan, stat, rollout, rotate-anchor, version).

import type { CommandSpec } from "../cli/command-line.ts";
import { COMMANDS, processIo, programName, runCli } from "../cli/main.ts";
import { runOperator } from "../operator/main.ts";
import { runValidate } from "../operator/validate-command.ts";

const validateCommand: CommandSpec = {
  path: ["validate"],
  summary: "check Trellis objects in YAML files offline, with the schema and checks the operator uses",
  args: "FILE...",
  maxArgs: Number.POSITIVE_INFINITY,
  clusterFlags: false,
  examples: ["validate docs/examples/mesh.yaml"],
  run: async (inv) => runValidate(inv.positionals),
};

const operatorCommand: CommandSpec = {
  path: ["operator"],
  summary: "run the operator (what its Deployment runs; see operator --help)",
  clusterFlags: false,
  run: async () => 0,
};

const [command, ...rest] = process.argv.slice(2);
if (command === "operator") {
  try {
    await runOperator(rest);
  } catch (err) {
    process.stderr.write(`trellis operator: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
} else {
  const io = processIo();
  process.exitCode = await runCli(process.argv.slice(2), io, programName(process.argv[1], process.env), [
    ...COMMANDS,
    validateCommand,
    operatorCommand,
  ]);
}
