// The trellis command: `trellis operator [flags]`, `trellis validate <file>`, `trellis version`.
import { runOperator } from "../operator/main.ts";
import { OPERATOR_VERSION } from "../operator/release.ts";
import { runValidate } from "../operator/validate-command.ts";

const [command, ...rest] = process.argv.slice(2);
const usage =
  "usage: trellis operator [--kubeconfig F] [--namespace NS] [--no-leader-elect] [--metrics-port P]\n       trellis validate FILE...\n       trellis version";

try {
  switch (command) {
    case "operator":
      await runOperator(rest);
      break;
    case "validate":
      process.exitCode = runValidate(rest);
      break;
    case "version":
      process.stdout.write(`${OPERATOR_VERSION}\n`);
      break;
    default:
      process.stderr.write(`${usage}\n`);
      process.exitCode = 2;
  }
} catch (err) {
  process.stderr.write(`trellis ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
