// The plugin as a process: reads the runtime's request (CNI_* variables, stdin), finds whether
// the namespace is the node's own, runs iptables inside the pod's namespace (from the plugin
// tree when the launcher started it), prints the answer and logs one line on stderr (the
// runtime's log). The decisions are plugin.ts's.
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import type { CommandRunner } from "../capture/init.ts";
import { CNI_ERRORS, errorAnswer, parseRequest } from "./cni-protocol.ts";
import { executePlugin, type PluginOutcome, planPlugin } from "./plugin.ts";
import { netnsToolCommand, TREE_ENV } from "./plugin-tree.ts";

/** Whether `path` is the same network namespace as the runtime's (this process's) or init's. */
export function isNodeNamespace(path: string): boolean {
  const id = (p: string) => {
    try {
      const s = statSync(p);
      return `${s.dev}:${s.ino}`;
    } catch {
      return undefined;
    }
  };
  const target = id(path);
  if (target === undefined) return false;
  return target === id("/proc/self/ns/net") || target === id("/proc/1/ns/net");
}

/** Runs each iptables tool inside `netns` with nsenter, from the plugin tree when there is one. */
export function netnsRunner(netns: string, tree: string | undefined): CommandRunner {
  return (tool, args, input) => {
    const command = netnsToolCommand(tree, netns, tool, args);
    const r = spawnSync(command.file, command.args, {
      input,
      encoding: "utf8",
      env: {
        PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        XTABLES_LOCKFILE: process.env.XTABLES_LOCKFILE ?? "/run/xtables.lock",
        ...command.env,
      },
      timeout: 20_000,
    });
    const output = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? r.error.message : ""}`.trim();
    return { status: r.error ? 127 : (r.status ?? 1), output, stdout: r.stdout ?? "" };
  };
}

export function runPlugin(env: Record<string, string | undefined>, stdin: string): PluginOutcome {
  const parsed = parseRequest(env, stdin);
  if (!parsed.ok) {
    return { stdout: errorAnswer("1.0.0", parsed.error), exitCode: 1, log: parsed.error.msg };
  }
  const request = parsed.request;
  try {
    const plan = planPlugin(request, {
      isNodeNamespace: request.netns !== "" && isNodeNamespace(request.netns),
    });
    const runner = netnsRunner(request.netns, env[TREE_ENV] || undefined);
    return executePlugin(request, plan, runner, readFileSync("/proc/self/status", "utf8"));
  } catch (err) {
    const error = { code: CNI_ERRORS.ioFailure, msg: "trellis-cni failed", details: String(err) };
    return { stdout: errorAnswer(request.config.cniVersion, error), exitCode: 1, log: error.details };
  }
}

/** The program: one request, one answer, one log line. */
export function pluginMain(): void {
  let stdin = "";
  try {
    stdin = readFileSync(0, "utf8");
  } catch {}
  const outcome = runPlugin(process.env, stdin);
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), plugin: "trellis-cni", msg: outcome.log })}\n`,
  );
  process.stdout.write(outcome.stdout);
  process.exitCode = outcome.exitCode;
}
