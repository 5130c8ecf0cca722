// The capture rules: the one definition of which TCP connections of a pod go through its proxy,
// as iptables-restore text for the pod's network namespace. trellis-init applies it in the pod
// (init.ts); a CNI plugin on the node can apply the same text through `nsenter --net=<netns>`.
//
//   nat PREROUTING → TRELLIS_INBOUND: RETURN for the proxy's own ports and skip-inbound ports,
//                    then every TCP connection → REDIRECT to the proxy's inbound port;
//   nat OUTPUT     → TRELLIS_OUTPUT:  RETURN for the proxy's UID, for loopback (-o lo: loopback
//                    addresses and the pod's own IP), skip-outbound ports and skip subnets, then
//                    every TCP connection → REDIRECT to the proxy's outbound port.
//
// Idempotent by construction: applied with `--noflush`, the text declares our two chains (so
// they are created, or flushed and refilled) and adds a jump only when `installed` says it is
// missing — a second run leaves exactly one jump and the same chains. The same text serves the
// nf_tables and the legacy backend (iptables-nft-restore / iptables-legacy-restore).
// Owns: the rules and the reading of a saved nat table. Does not own: running iptables.
import { type CaptureSettings, cidrFamily, type IpFamily, type PortRange } from "./capture-settings.ts";

export const CAPTURE_CHAINS = { inbound: "TRELLIS_INBOUND", outbound: "TRELLIS_OUTPUT" } as const;

/** The built-in nat chain each of ours hangs from. */
const HOOKS = { inbound: "PREROUTING", outbound: "OUTPUT" } as const;

/** Which of our jumps a saved nat table already holds. */
export interface InstalledJumps {
  inbound: boolean;
  outbound: boolean;
}

const NONE: InstalledJumps = { inbound: false, outbound: false };

const dport = (r: PortRange) => (r.from === r.to ? `--dport ${r.from}` : `--dport ${r.from}:${r.to}`);

/** The rules of our two chains, in order, as `-A` lines. */
export function captureRules(settings: CaptureSettings, family: IpFamily): string[] {
  const inbound = CAPTURE_CHAINS.inbound;
  const outbound = CAPTURE_CHAINS.outbound;
  return [
    ...settings.skipInboundPorts.map((r) => `-A ${inbound} -p tcp ${dport(r)} -j RETURN`),
    `-A ${inbound} -p tcp -j REDIRECT --to-ports ${settings.inboundPort}`,
    `-A ${outbound} -m owner --uid-owner ${settings.proxyUid} -j RETURN`,
    `-A ${outbound} -o lo -j RETURN`,
    ...settings.skipOutboundPorts.map((r) => `-A ${outbound} -p tcp ${dport(r)} -j RETURN`),
    ...settings.skipSubnets
      .filter((cidr) => cidrFamily(cidr) === family)
      .map((cidr) => `-A ${outbound} -d ${cidr} -j RETURN`),
    `-A ${outbound} -p tcp -j REDIRECT --to-ports ${settings.outboundPort}`,
  ];
}

/**
 * The iptables-restore input (for `--noflush`) that installs capture in one family's nat table.
 * `installed`: the jumps the table already has (from installedJumps), which are not added again.
 */
export function captureRuleset(
  settings: CaptureSettings,
  family: IpFamily,
  installed: InstalledJumps = NONE,
): string {
  const jumps = (["inbound", "outbound"] as const)
    .filter((side) => !installed[side])
    .map((side) => `-A ${HOOKS[side]} -j ${CAPTURE_CHAINS[side]}`);
  return `${[
    `# trellis capture rules (IPv${family})`,
    "*nat",
    `:${CAPTURE_CHAINS.inbound} - [0:0]`,
    `:${CAPTURE_CHAINS.outbound} - [0:0]`,
    ...captureRules(settings, family),
    ...jumps,
    "COMMIT",
  ].join("\n")}\n`;
}

/** The jumps to our chains found in `iptables-save -t nat` output. */
export function installedJumps(natSave: string): InstalledJumps {
  const lines = new Set(natSave.split("\n").map((l) => l.trim()));
  return {
    inbound: lines.has(`-A ${HOOKS.inbound} -j ${CAPTURE_CHAINS.inbound}`),
    outbound: lines.has(`-A ${HOOKS.outbound} -j ${CAPTURE_CHAINS.outbound}`),
  };
}

/** What a saved nat table shows of capture: rules per chain of ours and jumps to them per hook. */
export function capturePresence(natSave: string): {
  rules: Record<string, number>;
  jumps: Record<string, number>;
} {
  const rules: Record<string, number> = { [CAPTURE_CHAINS.inbound]: 0, [CAPTURE_CHAINS.outbound]: 0 };
  const jumps: Record<string, number> = { [CAPTURE_CHAINS.inbound]: 0, [CAPTURE_CHAINS.outbound]: 0 };
  for (const line of natSave.split("\n")) {
    const [verb, chain] = line.trim().split(/\s+/);
    if (verb !== "-A" || chain === undefined) continue;
    if (chain in rules) rules[chain] = (rules[chain] ?? 0) + 1;
    for (const ours of Object.keys(jumps))
      if (line.trim().endsWith(` -j ${ours}`) && !(chain in rules)) jumps[ours] = (jumps[ours] ?? 0) + 1;
  }
  return { rules, jumps };
}
