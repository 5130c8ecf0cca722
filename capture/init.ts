// `trellis-init`: the first init container of a meshed pod. Installs the capture rules
// (ruleset.ts) in the pod's network namespace, checks that they are there, says what it did in
// one line per family, and exits. On failure it exits 1 with a message that names the cause,
// written to the termination log too, so `kubectl describe pod` shows it.
//
//   trellis-init [--inbound-port 4143] [--outbound-port 4140] [--proxy-uid 2102]
//                [--skip-inbound-ports 4140,4143,4191] [--skip-outbound-ports 25,5432]
//                [--skip-subnets 169.254.169.254/32] [--iptables-mode auto|nft|legacy]
//                [--ipv6 auto|on|off] [--dry-run]
//
// Backend: nf_tables (iptables-nft-*) by default; `auto` falls back to the legacy backend only
// where nf_tables does not work. IPv6 rules are installed when the namespace has IPv6 (`auto`);
// a namespace with IPv6 where they cannot be installed is a failure, never a silent bypass.
// Capabilities: the image starts this program through its entrypoint (capture/native/
// init-exec.c), which raises NET_ADMIN and NET_RAW into the ambient set (docs/capture.md), so
// iptables inherits them; a missing capability is explained there, and again here.
// Owns: flags, backend choice, running iptables, verification, failure messages.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  type CaptureSettings,
  defaultCaptureSettings,
  formatPortList,
  type IpFamily,
  type Parsed,
  parseCidrList,
  parsePortList,
} from "./capture-settings.ts";
import { CAPTURE_CHAINS, capturePresence, captureRules, captureRuleset, installedJumps } from "./ruleset.ts";

export type Backend = "nft" | "legacy";

export interface InitOptions {
  settings: CaptureSettings;
  mode: "auto" | Backend;
  ipv6: "auto" | "on" | "off";
  dryRun: boolean;
}

export class InitError extends Error {}

/** The flags as rendered by the injector (or typed by a person) → options; throws InitError. */
export function parseInitFlags(argv: string[]): InitOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      "inbound-port": { type: "string" },
      "outbound-port": { type: "string" },
      "proxy-uid": { type: "string" },
      "skip-inbound-ports": { type: "string" },
      "skip-outbound-ports": { type: "string" },
      "skip-subnets": { type: "string" },
      "iptables-mode": { type: "string", default: "auto" },
      ipv6: { type: "string", default: "auto" },
      "dry-run": { type: "boolean", default: false },
    },
    strict: true,
  });
  const settings = defaultCaptureSettings();
  const number = (name: string, text: string | undefined, fallback: number, max: number) => {
    if (text === undefined) return fallback;
    const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!(n >= 0 && n <= max)) throw new InitError(`--${name} ${text}: not a number from 0 to ${max}`);
    return n;
  };
  const list = <T>(name: string, text: string | undefined, parse: (t: string) => Parsed<T>, fallback: T) => {
    if (text === undefined) return fallback;
    const parsed = parse(text);
    if (!parsed.ok) throw new InitError(`--${name}: ${parsed.error}`);
    return parsed.value;
  };
  settings.inboundPort = number("inbound-port", values["inbound-port"], settings.inboundPort, 65535);
  settings.outboundPort = number("outbound-port", values["outbound-port"], settings.outboundPort, 65535);
  settings.proxyUid = number("proxy-uid", values["proxy-uid"], settings.proxyUid, 2 ** 31 - 1);
  settings.skipInboundPorts = list(
    "skip-inbound-ports",
    values["skip-inbound-ports"],
    parsePortList,
    settings.skipInboundPorts,
  );
  settings.skipOutboundPorts = list("skip-outbound-ports", values["skip-outbound-ports"], parsePortList, []);
  settings.skipSubnets = list("skip-subnets", values["skip-subnets"], parseCidrList, []);
  const mode = values["iptables-mode"];
  if (mode !== "auto" && mode !== "nft" && mode !== "legacy")
    throw new InitError(`--iptables-mode ${mode}: auto, nft or legacy`);
  const ipv6 = values.ipv6;
  if (ipv6 !== "auto" && ipv6 !== "on" && ipv6 !== "off")
    throw new InitError(`--ipv6 ${ipv6}: auto, on or off`);
  return { settings, mode, ipv6, dryRun: Boolean(values["dry-run"]) };
}

/** The flags that give `settings` (the injector renders these; parseInitFlags reads them back). */
export function initFlags(settings: CaptureSettings): string[] {
  return [
    `--inbound-port=${settings.inboundPort}`,
    `--outbound-port=${settings.outboundPort}`,
    `--proxy-uid=${settings.proxyUid}`,
    `--skip-inbound-ports=${formatPortList(settings.skipInboundPorts)}`,
    ...(settings.skipOutboundPorts.length > 0
      ? [`--skip-outbound-ports=${formatPortList(settings.skipOutboundPorts)}`]
      : []),
    ...(settings.skipSubnets.length > 0 ? [`--skip-subnets=${settings.skipSubnets.join(",")}`] : []),
  ];
}

const CAP_NET_ADMIN = 12n;
const CAP_NET_RAW = 13n;

/** Capability sets from /proc/self/status ("CapEff", "CapBnd", ...). */
export function capabilitySets(status: string): Record<string, bigint> {
  const out: Record<string, bigint> = {};
  for (const m of status.matchAll(/^(Cap\w+):\s*([0-9a-f]+)$/gm)) out[m[1] as string] = BigInt(`0x${m[2]}`);
  return out;
}

/** Why a process with these capability sets cannot program rules, or undefined when it can. */
export function missingCapabilities(sets: Record<string, bigint>): string | undefined {
  const has = (set: bigint | undefined, bit: bigint) => ((set ?? 0n) >> bit) & 1n;
  const missing = [
    ...(has(sets.CapEff, CAP_NET_ADMIN) ? [] : ["NET_ADMIN"]),
    ...(has(sets.CapEff, CAP_NET_RAW) ? [] : ["NET_RAW"]),
  ];
  if (missing.length === 0) return undefined;
  const bounded = !has(sets.CapBnd, CAP_NET_ADMIN) || !has(sets.CapBnd, CAP_NET_RAW);
  return bounded
    ? `the container was not granted ${missing.join(" and ")} (not in its capability bounding set): a Pod Security Standard (baseline or restricted) or another policy removed them from trellis-init's securityContext`
    : `the process holds no ${missing.join(" and ")} although the container may: start trellis-init through its image's entrypoint (which raises them), or, where the runtime ignores file capabilities, run it as root`;
}

/** A readable cause for an iptables failure, from its output. */
export function explainIptablesFailure(output: string): string {
  if (/Permission denied|you must be root|Operation not permitted/i.test(output))
    return "iptables was refused (no NET_ADMIN/NET_RAW in effect)";
  if (/Table does not exist|can't initialize|Protocol not supported|Could not fetch rule set/i.test(output))
    return "the kernel has no usable nat table for this backend (nf_tables or ip_tables with NAT support)";
  if (/Couldn't load target|Couldn't load match|No such file or directory/i.test(output))
    return "an iptables extension (REDIRECT, owner or tcp) is missing from the kernel or the image";
  return "iptables failed";
}

export interface Run {
  status: number;
  output: string;
  stdout: string;
}

/**
 * Runs one iptables tool by name (`iptables-nft-restore`, ...). The default runs it here; the CNI
 * plugin passes one that runs it inside a pod's network namespace from the node.
 */
export type CommandRunner = (command: string, args: string[], input?: string) => Run;

function run(command: string, args: string[], input?: string): Run {
  const r = spawnSync(command, args, {
    input,
    encoding: "utf8",
    env: { ...process.env, XTABLES_LOCKFILE: process.env.XTABLES_LOCKFILE ?? "/run/xtables.lock" },
  });
  const output = `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? r.error.message : ""}`.trim();
  return { status: r.error ? 127 : (r.status ?? 1), output, stdout: r.stdout ?? "" };
}

const tool = (family: IpFamily, backend: Backend, verb: "save" | "restore") =>
  `${family === 6 ? "ip6tables" : "iptables"}-${backend}-${verb}`;

/** The backend to use: nf_tables unless forced to legacy, or `auto` and nf_tables does not work. */
export function chooseBackend(
  mode: InitOptions["mode"],
  runner: CommandRunner = run,
): { backend: Backend; why: string } {
  if (mode !== "auto") return { backend: mode, why: `--iptables-mode=${mode}` };
  const nft = runner(tool(4, "nft", "save"), ["-t", "nat"]);
  if (nft.status === 0) return { backend: "nft", why: "nf_tables works" };
  const legacy = runner(tool(4, "legacy", "save"), ["-t", "nat"]);
  if (legacy.status === 0) return { backend: "legacy", why: `nf_tables does not work (${nft.output})` };
  throw new InitError(
    `neither iptables backend works: ${explainIptablesFailure(nft.output)}; nft: ${nft.output}; legacy: ${legacy.output}`,
  );
}

/** Whether this network namespace has IPv6 (an address in /proc/net/if_inet6). */
export function namespaceHasIpv6(): boolean {
  try {
    return existsSync("/proc/net/if_inet6") && readFileSync("/proc/net/if_inet6", "utf8").trim() !== "";
  } catch {
    return false;
  }
}

/** Installs and verifies one family's rules; returns a one-line summary. */
function installFamily(
  settings: CaptureSettings,
  family: IpFamily,
  backend: Backend,
  dryRun: boolean,
  runner: CommandRunner,
): string {
  const save = () => {
    const r = runner(tool(family, backend, "save"), ["-t", "nat"]);
    if (r.status !== 0)
      throw new InitError(
        `${tool(family, backend, "save")}: ${explainIptablesFailure(r.output)}: ${r.output}`,
      );
    return r.stdout;
  };
  const ruleset = captureRuleset(settings, family, installedJumps(save()));
  if (dryRun) return ruleset;
  const restore = runner(tool(family, backend, "restore"), ["--noflush", "--wait"], ruleset);
  if (restore.status !== 0) {
    throw new InitError(
      `${tool(family, backend, "restore")}: ${explainIptablesFailure(restore.output)}: ${restore.output}\nrules:\n${ruleset}`,
    );
  }
  // Read back what the kernel holds: every rule of ours, each jump exactly once.
  const presence = capturePresence(save());
  const expected = captureRules(settings, family);
  for (const chain of Object.values(CAPTURE_CHAINS)) {
    const want = expected.filter((r) => r.startsWith(`-A ${chain} `)).length;
    if (presence.rules[chain] !== want || presence.jumps[chain] !== 1) {
      throw new InitError(
        `IPv${family} rules did not verify: chain ${chain} has ${presence.rules[chain]} rules (want ${want}) and ${presence.jumps[chain]} jumps to it (want 1)`,
      );
    }
  }
  return `IPv${family}: ${expected.length} rules in ${Object.values(CAPTURE_CHAINS).join(" and ")} (${backend})`;
}

/** The whole job; returns the lines to print. Throws InitError with the cause on failure. */
export function runInit(options: InitOptions, procStatus: string, runner: CommandRunner = run): string[] {
  const missing = missingCapabilities(capabilitySets(procStatus));
  if (missing && !options.dryRun) throw new InitError(`cannot program the capture rules: ${missing}`);
  const { backend, why } = options.dryRun
    ? { backend: options.mode === "legacy" ? ("legacy" as const) : ("nft" as const), why: "dry run" }
    : chooseBackend(options.mode, runner);
  const families: IpFamily[] = [4];
  if (options.ipv6 === "on" || (options.ipv6 === "auto" && namespaceHasIpv6())) families.push(6);
  const lines = [`backend ${backend} (${why}); families IPv${families.join(", IPv")}`];
  for (const family of families)
    lines.push(installFamily(options.settings, family, backend, options.dryRun, runner));
  return lines;
}

/** The program: flags from argv, one line per step on stdout, the cause on failure (exit 1). */
export function main(argv: string[]): void {
  const say = (line: string) => process.stdout.write(`trellis-init: ${line}\n`);
  try {
    const options = parseInitFlags(argv);
    for (const line of runInit(options, readFileSync("/proc/self/status", "utf8"))) say(line);
  } catch (err) {
    const message = `trellis-init: ${err instanceof InitError ? err.message : (err as Error).stack}`;
    process.stderr.write(`${message}\n`);
    try {
      // The kubelet shows this file as the container's termination message.
      writeFileSync("/dev/termination-log", message.slice(0, 4000));
    } catch {}
    process.exit(1);
  }
}
