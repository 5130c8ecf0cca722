// `trellis-cni validate`: the first init container of a pod meshed in CNI mode. It holds no
// capability and runs as a non-root user other than the proxy's, so its own connections are
// captured like the application's. It listens on the proxy's outbound port (the proxy is not
// started yet) and connects to an address that only capture can answer: a documentation
// address (TEST-NET, RFC 5737) on a port the pod's settings do not skip. Capture in place: the
// connection is redirected to its own listener, which answers a random token. Not in place: the
// connection fails (or reaches something else) and the pod fails to start with a message that
// says why — the race Linkerd's network validator and Istio's validation container close: a pod
// whose network was set up before trellis-cni was on its node.
//
//   trellis-cni validate [trellis-init's flags, the same the injector renders for the plugin]
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { type CaptureSettings, cidrFamily, portInRanges } from "../capture/capture-settings.ts";
import { InitError, parseInitFlags } from "../capture/init.ts";

/** The validator's container name in a meshed pod (the injector renders it, the operator reads its status). */
export const VALIDATOR_CONTAINER = "trellis-validate";

/** Documentation addresses (RFC 5737): never a real host, so never a real destination. */
const PROBE_ADDRESSES = ["192.0.2.1", "198.51.100.1", "203.0.113.1"];
const PROBE_PORTS = [20001, 20002, 20003, 29999, 39999];

const ipv4 = (a: string) => a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
const dotted = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");

/** Whether an IPv4 address lies in a CIDR (IPv6 CIDRs never hold one). */
function inCidr(address: string, cidr: string): boolean {
  if (cidrFamily(cidr) !== 4) return false;
  const [base = "", bits = "32"] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4(address) / size) === Math.floor(ipv4(base) / size);
}

/** /proc/net/route's IPv4 routes: destination CIDR and whether it goes through a gateway. */
export function routesOf(procNetRoute: string): Array<{ cidr: string; viaGateway: boolean }> {
  const le = (hex: string) => {
    const n = Number.parseInt(hex, 16);
    return [0, 8, 16, 24].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
  };
  const out: Array<{ cidr: string; viaGateway: boolean }> = [];
  for (const line of procNetRoute.split("\n").slice(1)) {
    const [, dest, , flags, , , , mask] = line.trim().split(/\s+/);
    if (!dest || !flags || !mask) continue;
    const bits = ipv4(le(mask)).toString(2).replace(/0/g, "").length;
    out.push({ cidr: `${le(dest)}/${bits}`, viaGateway: (Number.parseInt(flags, 16) & 2) !== 0 });
  }
  return out;
}

/** The last usable address of an IPv4 CIDR (the address itself for a /32). */
function lastAddress(cidr: string): string {
  const [base = "", bits = "32"] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return dotted(ipv4(base) + (size <= 2 ? size - 1 : size - 2));
}

/**
 * An address and port whose connections the settings capture, or why there is none. The address,
 * in this order: a documentation address when the pod has a default route (every real cluster);
 * else the last address of a prefix the pod routes through a gateway, widest first (the test
 * harness routes only the Service range, whose packets its pods reject when uncaptured); else
 * the last address of an on-link prefix. Without capture the probe goes where that route says
 * and fails; with capture it never leaves the pod.
 */
export function probeTarget(
  settings: CaptureSettings,
  procNetRoute: string,
): { host: string; port: number } | { none: string } {
  const routes = routesOf(procNetRoute).filter((r) => r.cidr !== "0.0.0.0/0" || r.viaGateway);
  const prefix = (r: { cidr: string }) => Number(r.cidr.split("/")[1]);
  const byWidth = (a: { cidr: string }, b: { cidr: string }) => prefix(a) - prefix(b);
  const skipped = (a: string) => settings.skipSubnets.some((c) => inCidr(a, c));
  const candidates = [
    ...(routes.some((r) => r.cidr === "0.0.0.0/0") ? PROBE_ADDRESSES : []),
    ...routes
      .filter((r) => r.viaGateway && r.cidr !== "0.0.0.0/0")
      .sort(byWidth)
      .map((r) => lastAddress(r.cidr)),
    ...routes
      .filter((r) => !r.viaGateway)
      .sort(byWidth)
      .map((r) => lastAddress(r.cidr)),
  ];
  const host = candidates.find((a) => !skipped(a));
  const port = PROBE_PORTS.find((p) => !portInRanges(p, settings.skipOutboundPorts));
  if (!host)
    return { none: "the pod has no IPv4 route that capture could redirect outside its skipped subnets" };
  if (!port) return { none: `every probe port (${PROBE_PORTS.join(", ")}) is a skipped outbound port` };
  return { host, port };
}

export type Verdict = { captured: true; detail: string } | { captured: false; reason: string };

/** The check itself: listen on the outbound port, connect to the target, expect our own token. */
export async function checkCapture(
  settings: CaptureSettings,
  procNetRoute: string,
  timeoutMs = 5000,
): Promise<Verdict> {
  const target = probeTarget(settings, procNetRoute);
  if ("none" in target) return { captured: false, reason: `nothing to probe with: ${target.none}` };
  const token = randomBytes(16).toString("hex");
  const server = createServer((socket) => socket.end(token));
  const listening = await new Promise<Error | undefined>((resolve) => {
    server.once("error", resolve);
    server.listen(settings.outboundPort, "127.0.0.1", () => resolve(undefined));
  });
  if (listening) {
    return {
      captured: false,
      reason: `cannot listen on 127.0.0.1:${settings.outboundPort} to check capture: ${listening.message}`,
    };
  }
  const to = `${target.host}:${target.port}`;
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: target.host, port: target.port });
      let data = "";
      socket.setTimeout(timeoutMs, () => {
        socket.destroy();
        reject(new Error(`no answer within ${timeoutMs} ms`));
      });
      socket.on("data", (chunk) => {
        data += chunk;
      });
      socket.on("end", () => resolve(data));
      socket.on("error", reject);
    });
    if (answer === token)
      return { captured: true, detail: `a connection to ${to} reached 127.0.0.1:${settings.outboundPort}` };
    return {
      captured: false,
      reason: `a connection to ${to} reached something other than this pod's redirect`,
    };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      captured: false,
      reason: `a connection to ${to} was not redirected (${code ?? (err as Error).message})`,
    };
  } finally {
    server.close();
  }
}

export const NOT_CAPTURED_ADVICE =
  "the Trellis CNI plugin did not set up this pod's network: the pod started before trellis-cni was installed on its node (the operator restarts such pods of a workload once the plugin is ready there; delete a bare pod to retry), or the node's container runtime does not pass pod annotations to CNI plugins (docs/cni.md)";

export async function validatorMain(argv: string[]): Promise<number> {
  const fail = (message: string) => {
    const text = `trellis-cni validate: ${message}`;
    process.stderr.write(`${text}\n`);
    try {
      writeFileSync("/dev/termination-log", text.slice(0, 4000));
    } catch {}
    return 1;
  };
  let settings: CaptureSettings;
  try {
    settings = parseInitFlags(argv).settings;
  } catch (err) {
    return fail(err instanceof InitError ? err.message : String(err));
  }
  const verdict = await checkCapture(settings, readFileSync("/proc/net/route", "utf8"));
  if (!verdict.captured)
    return fail(`this pod's traffic is not captured: ${verdict.reason}; ${NOT_CAPTURED_ADVICE}`);
  process.stdout.write(`trellis-cni validate: capture is in place (${verdict.detail})\n`);
  return 0;
}
