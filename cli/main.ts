// The command line's entry: finds the command, parses its flags, connects to the cluster on
// first use, runs it, and turns every failure into one line and an exit status — 0 fine,
// 1 a check failed, a plan was refused or the cluster said no, 2 a usage error.
import { checkCommand } from "./check/check-command.ts";
import { type Cluster, connect, describeFailure } from "./cluster.ts";
import {
  type CommandSpec,
  commandHelp,
  findCommand,
  type Io,
  parseCommand,
  programHelp,
} from "./command-line.ts";
import {
  rolloutAbortCommand,
  rolloutPauseCommand,
  rolloutResumeCommand,
  rolloutStatusCommand,
} from "./rollout/rollout-command.ts";
import { rotateAnchorCommand } from "./rotate-anchor-command.ts";
import { statCommand } from "./stat/stat-command.ts";
import { approveCommand } from "./upgrade/approve-command.ts";
import { planCommand } from "./upgrade/plan-command.ts";
import { EXIT, UsageError } from "./usage-error.ts";
import { versionCommand } from "./version-command.ts";

export const COMMANDS: CommandSpec[] = [
  checkCommand,
  planCommand,
  approveCommand,
  rolloutStatusCommand,
  rolloutPauseCommand,
  rolloutResumeCommand,
  rolloutAbortCommand,
  rotateAnchorCommand,
  statCommand,
  versionCommand,
];

/** `kubectl trellis` when kubectl runs this program as its plugin, else `trellis`. */
export function programName(argv1: string | undefined, env: NodeJS.ProcessEnv = {}): string {
  if (env.TRELLIS_PROGRAM === "kubectl trellis") return env.TRELLIS_PROGRAM;
  return /kubectl-trellis(\.m?js)?$/.test(argv1 ?? "") ? "kubectl trellis" : "trellis";
}

export async function runCli(argv: string[], io: Io, prog = "trellis", commands = COMMANDS): Promise<number> {
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    (argv.length === 0 ? io.err : io.out)(programHelp(commands, prog));
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  const found = findCommand(commands, argv);
  if (!found) {
    io.err(`${prog}: unknown command "${argv[0]}" (see ${prog} --help)\n`);
    return EXIT.usage;
  }
  if ("group" in found) {
    const help = argv.includes("--help") || argv.includes("-h");
    (help ? io.out : io.err)(programHelp(commands, prog, found.group));
    return help ? EXIT.ok : EXIT.usage;
  }
  const { command, rest } = found;
  let cluster: Cluster | undefined;
  try {
    const { flags, positionals } = parseCommand(command, rest, prog);
    if (flags.help) {
      io.out(commandHelp(command, prog));
      return EXIT.ok;
    }
    return await command.run({
      prog,
      flags,
      positionals,
      io,
      cluster: () => {
        cluster ??= connect(flags, io.env);
        return cluster;
      },
    });
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${prog} ${command.path.join(" ")}: ${err.message}\n`);
      return EXIT.usage;
    }
    io.err(`${prog} ${command.path.join(" ")}: ${describeFailure(err, cluster)}\n`);
    if (io.env.TRELLIS_DEBUG && err instanceof Error) io.err(`${err.stack}\n`);
    return EXIT.failed;
  }
}

/** The process's own streams. */
export function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    isTTY: process.stdout.isTTY === true,
    env: process.env,
    interrupted: () => new Promise((resolve) => process.once("SIGINT", () => resolve())),
  };
}
