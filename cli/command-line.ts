// The command line's grammar: commands (a path of words such as `upgrade plan`), their flags,
// positionals and help, parsed with node:util's strict parseArgs. Owns usage errors (exit 2)
// and help text; does not own what a command does (each *-command.ts) nor how it prints.
import { parseArgs } from "node:util";
import type { Cluster } from "./cluster.ts";
import { UsageError } from "./usage-error.ts";

export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
  description: string;
  /** Placeholder shown in help, e.g. VERSION. */
  value?: string;
  default?: string | boolean;
}

export type Flags = Record<string, string | boolean | undefined>;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal: colour and live views are allowed. */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Resolves when the user interrupts (Ctrl-C); live views stop on it. Asked for only by them. */
  interrupted?: () => Promise<void>;
}

export interface Invocation {
  /** How the user called the program: `kubectl trellis` or `trellis`. */
  prog: string;
  flags: Flags;
  positionals: string[];
  io: Io;
  /** The cluster of the user's kubeconfig and context, connected on first use. */
  cluster(): Cluster;
}

export interface CommandSpec {
  path: string[];
  summary: string;
  /** Positional arguments, as shown in the usage line, e.g. "[namespace[/workload]]". */
  args?: string;
  /** Longest number of positionals accepted. */
  maxArgs?: number;
  description?: string;
  flags?: Record<string, FlagSpec>;
  /** Flags every cluster command takes (kubeconfig, context, output). Default true. */
  clusterFlags?: boolean;
  examples?: string[];
  run(inv: Invocation): Promise<number>;
}

export const CLUSTER_FLAGS: Record<string, FlagSpec> = {
  kubeconfig: {
    type: "string",
    value: "FILE",
    description: "kubeconfig file (default $KUBECONFIG or ~/.kube/config)",
  },
  context: { type: "string", value: "NAME", description: "kubeconfig context (default the current context)" },
  output: { type: "string", short: "o", value: "FORMAT", description: "table (default), json or yaml" },
  "no-color": { type: "boolean", description: "never colour the output (also NO_COLOR=1)" },
};

const HELP_FLAG: Record<string, FlagSpec> = {
  help: { type: "boolean", short: "h", description: "show this help" },
};

export function flagsOf(cmd: CommandSpec): Record<string, FlagSpec> {
  return { ...(cmd.flags ?? {}), ...(cmd.clusterFlags === false ? {} : CLUSTER_FLAGS), ...HELP_FLAG };
}

/** The command whose path is the longest prefix of the words before the first flag. */
export function findCommand(
  commands: CommandSpec[],
  argv: string[],
): { command: CommandSpec; rest: string[] } | { group: string[] } | undefined {
  const words: string[] = [];
  for (const a of argv) {
    if (a.startsWith("-")) break;
    words.push(a);
  }
  let best: CommandSpec | undefined;
  for (const c of commands) {
    if (c.path.length > words.length || (best && best.path.length >= c.path.length)) continue;
    if (c.path.every((w, i) => words[i] === w)) best = c;
  }
  if (best) {
    const rest = [...argv];
    for (const w of best.path) rest.splice(rest.indexOf(w), 1);
    return { command: best, rest };
  }
  const first = words[0];
  if (first !== undefined && commands.some((c) => c.path.length > 1 && c.path[0] === first))
    return { group: [first] };
  return undefined;
}

/** Parses a command's flags and positionals strictly; throws UsageError on anything unknown. */
export function parseCommand(
  cmd: CommandSpec,
  argv: string[],
  prog: string,
): { flags: Flags; positionals: string[] } {
  const specs = flagsOf(cmd);
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, f] of Object.entries(specs))
    options[name] = f.short ? { type: f.type, short: f.short } : { type: f.type };
  const name = `${prog} ${cmd.path.join(" ")}`;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${parseArgsMessage(err)} (see ${name} --help)`);
  }
  const flags: Flags = {};
  for (const [k, f] of Object.entries(specs)) {
    const v = (parsed.values as Flags)[k];
    flags[k] = v ?? f.default;
  }
  if (!flags.help && parsed.positionals.length > (cmd.maxArgs ?? 0)) {
    const extra = parsed.positionals.slice(cmd.maxArgs ?? 0).join(" ");
    throw new UsageError(`unexpected argument "${extra}" (see ${name} --help)`);
  }
  const output = flags.output;
  if (output !== undefined && !["table", "json", "yaml"].includes(String(output)))
    throw new UsageError(`--output must be table, json or yaml, not "${output}"`);
  return { flags, positionals: parsed.positionals };
}

/** node:util's messages, made short: "unknown flag --foo". */
function parseArgsMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const m = e.message ?? String(err);
  const option = /'(-[^']*)'/.exec(m)?.[1] ?? /"(-[^"]*)"/.exec(m)?.[1];
  switch (e.code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return `unknown flag ${option ?? m}`;
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return /argument missing/.test(m) ? `flag ${option ?? ""} needs a value` : (m.split(".")[0] ?? m);
    default:
      return m.split("\n")[0] ?? m;
  }
}

export function commandHelp(cmd: CommandSpec, prog: string): string {
  const name = `${prog} ${cmd.path.join(" ")}`;
  const lines = [cmd.summary, "", `Usage: ${name}${cmd.args ? ` ${cmd.args}` : ""} [flags]`];
  if (cmd.description) lines.push("", cmd.description);
  lines.push("", "Flags:", ...flagLines(flagsOf(cmd)));
  if (cmd.examples?.length) lines.push("", "Examples:", ...cmd.examples.map((e) => `  ${prog} ${e}`));
  return `${lines.join("\n")}\n`;
}

function flagLines(specs: Record<string, FlagSpec>): string[] {
  const rows = Object.entries(specs).map(([name, f]) => {
    const short = f.short ? `-${f.short}, ` : "    ";
    const left = `${short}--${name}${f.type === "string" ? ` ${f.value ?? "VALUE"}` : ""}`;
    const def = f.default !== undefined && f.default !== false ? ` (default ${f.default})` : "";
    return [left, `${f.description}${def}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, d]) => `  ${l.padEnd(width)}  ${d}`);
}

export function programHelp(commands: CommandSpec[], prog: string, group?: string[]): string {
  const shown = commands.filter((c) => !group || group.every((w, i) => c.path[i] === w));
  const width = Math.max(...shown.map((c) => c.path.join(" ").length));
  const lines = [
    group
      ? `${prog} ${group.join(" ")}: one of these commands`
      : "Trellis: check, plan and watch a Trellis mesh.",
    "",
    `Usage: ${prog} ${group ? group.join(" ") : "COMMAND"} ${group ? "SUBCOMMAND " : ""}[flags]`,
    "",
    "Commands:",
    ...shown.map((c) => `  ${c.path.join(" ").padEnd(width)}  ${c.summary}`),
    "",
    `Run "${prog} ${group ? `${group.join(" ")} ` : ""}COMMAND --help" for a command's flags.`,
  ];
  return `${lines.join("\n")}\n`;
}
