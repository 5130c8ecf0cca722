// The real node's network: a Linux bridge of the harness's own, a private /24 for its pods,
// the CNI configuration that puts pods on it, and the one redirect that lets pods reach the API.
//
// Safety first (HARNESS.md "Network safety"): pods get no default route (their only routes are
// the pod /24, on-link, and the Service range via the gateway, which exists only so that
// connect() reaches the pod's own nat rules); the host gets an `unreachable` route for the
// Service range so no packet to a ClusterIP can leave the machine. Inside the pod's own network
// namespace (a chained CNI plugin written here) the `kubernetes` Service's ClusterIP:443 is
// DNAT-ed to the bridge's gateway address, where the harness forwards to the loopback API
// server, and every other packet to the Service range is REJECTed: a ClusterIP is reachable only
// through a meshed pod's proxy, whose capture rules (docs/capture.md) redirect the connection
// before that filter sees it. There is no kube-proxy.
// Each cluster's bridge is named for its /24 (`trellis<N>` ↔ 10.253.N.0/24), so creating the link
// claims the subnet atomically among parallel clusters; its alias names the owning PID and dir,
// so a later start can remove the leftovers of an owner that was SIGKILLed.
// Does not own: containerd or the kubelet (real-node.ts), DNS (cluster-dns.ts).
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { join } from "node:path";
import { isRunning } from "./processes.ts";

export interface NodeNetwork {
  /** Index N of this cluster's subnet 10.253.N.0/24. */
  index: number;
  bridge: string;
  /** The node's pod CIDR, also the bridge's subnet. */
  podCidr: string;
  /** The bridge's address: the node IP, kubelet address, DNS server and API forwarder. */
  gatewayIp: string;
  /** Metric of this cluster's `unreachable` route for the Service range. */
  routeMetric: number;
}

const SUBNET_PREFIX = "10.253";
const BRIDGE_PREFIX = "trellis";
const ALIAS_PREFIX = "trellis-cluster";

function ip(args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function tryIp(args: string[]): boolean {
  try {
    ip(args);
    return true;
  } catch {
    return false;
  }
}

interface Route {
  dst: string;
  type?: string;
}

function ipv4ToInt(address: string): number {
  return address.split(".").reduce((acc, part) => acc * 256 + Number(part), 0);
}

/** Whether two IPv4 CIDRs overlap ("default" overlaps nothing here: it is the route we never use). */
export function cidrsOverlap(a: string, b: string): boolean {
  const range = (cidr: string) => {
    const [address, bits = "32"] = cidr.split("/");
    const size = 2 ** (32 - Number(bits));
    const start = Math.floor(ipv4ToInt(address ?? "0.0.0.0") / size) * size;
    return [start, start + size - 1] as const;
  };
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
}

function ipv4Routes(): Route[] {
  const routes = JSON.parse(ip(["-4", "-j", "route", "show", "table", "all"])) as Route[];
  return routes.filter((r) => r.dst !== "default" && /^\d/.test(r.dst));
}

/**
 * The bridge's own MAC address, set when it is created (locally administered, one per /24).
 * Without it the kernel gives a bridge the lowest MAC among its ports, which changes whenever a
 * pod's veth with a lower one is added or the port holding it is deleted. Pods do not learn of
 * the change (no gratuitous ARP): they keep sending to the gateway's old MAC, which once its port
 * is gone reaches nothing, so every pod loses the node's address (DNS, the API forwarder, the
 * kubelet's probes' answers) for as long as their ARP entry lives — seconds, each time a pod
 * holding the lowest MAC ends. The end-to-end test saw it as 5 s DNS stalls whenever pods ended.
 */
export function bridgeMac(index: number): string {
  return `02:74:72:fd:${index.toString(16).padStart(2, "0")}:01`;
}

/**
 * Creates the bridge for a free 10.253.N.0/24 with a fixed MAC address (bridgeMac), gives it
 * the gateway address, and adds the host's `unreachable` route for the Service range. Throws
 * when a route already sends any of the Service range somewhere (a real network could reach it).
 */
export function createNodeNetwork(ownerDir: string, serviceCidr: string): NodeNetwork {
  const routes = ipv4Routes();
  const leaking = routes.filter((r) => r.type !== "unreachable" && cidrsOverlap(r.dst, serviceCidr));
  if (leaking.length > 0) {
    throw new Error(
      `a host route already covers the Service range ${serviceCidr}: ${JSON.stringify(leaking)}`,
    );
  }
  const start = 1 + Math.floor(Math.random() * 250);
  for (let i = 0; i < 250; i++) {
    const index = ((start + i) % 250) + 1;
    const podCidr = `${SUBNET_PREFIX}.${index}.0/24`;
    if (routes.some((r) => cidrsOverlap(r.dst, podCidr))) continue;
    const bridge = `${BRIDGE_PREFIX}${index}`;
    if (!tryIp(["link", "add", "name", bridge, "address", bridgeMac(index), "type", "bridge"])) continue;
    const network: NodeNetwork = {
      index,
      bridge,
      podCidr,
      gatewayIp: `${SUBNET_PREFIX}.${index}.1`,
      routeMetric: 4000 + index,
    };
    ip(["link", "set", "dev", bridge, "alias", `${ALIAS_PREFIX} pid=${process.pid} dir=${ownerDir}`]);
    writeFileSync(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, "1");
    ip(["addr", "add", `${network.gatewayIp}/24`, "dev", bridge]);
    ip(["link", "set", "dev", bridge, "up"]);
    ip(["route", "add", "unreachable", serviceCidr, "metric", String(network.routeMetric)]);
    return network;
  }
  throw new Error(`no free ${SUBNET_PREFIX}.N.0/24 for the real node's bridge`);
}

/** Removes the bridge and the `unreachable` route; safe to call twice. */
export function removeNodeNetwork(bridge: string, serviceCidr: string): void {
  const index = Number(bridge.slice(BRIDGE_PREFIX.length));
  tryIp(["link", "del", "dev", bridge]);
  tryIp(["route", "del", "unreachable", serviceCidr, "metric", String(4000 + index)]);
}

/** The bridges harnesses made, with the dir and whether the owning process still lives. */
export function harnessBridges(): Array<{ bridge: string; dir: string; ownerAlive: boolean }> {
  const links = JSON.parse(ip(["-j", "link", "show", "type", "bridge"])) as Array<{
    ifname: string;
    ifalias?: string;
  }>;
  const bridges: Array<{ bridge: string; dir: string; ownerAlive: boolean }> = [];
  for (const link of links) {
    const match = link.ifalias?.match(new RegExp(`^${ALIAS_PREFIX} pid=(\\d+) dir=(\\S+)$`));
    if (!match?.[1] || !match[2]) continue;
    bridges.push({ bridge: link.ifname, dir: match[2], ownerAlive: isRunning(Number(match[1])) });
  }
  return bridges;
}

/**
 * Writes the CNI folders containerd reads: a bin dir (the system plugins plus our redirect
 * plugin) and a conflist: bridge + host-local for the pod /24, then the redirect.
 */
export function writeCniConfig(
  dir: string,
  network: NodeNetwork,
  redirect: { clusterIp: string; serviceCidr: string; port: number },
): { binDir: string; confDir: string } {
  const binDir = join(dir, "bin");
  const confDir = join(dir, "conf");
  mkdirSync(binDir, { recursive: true });
  mkdirSync(confDir, { recursive: true });
  for (const plugin of readdirSync("/usr/lib/cni"))
    symlinkSync(join("/usr/lib/cni", plugin), join(binDir, plugin));
  const plugin = join(binDir, "trellis-api-redirect");
  writeFileSync(plugin, redirectPluginScript(network, redirect));
  chmodSync(plugin, 0o755);
  const [a, b, c] = network.podCidr.split(".");
  const conflist = {
    cniVersion: "1.0.0",
    name: `trellis-${network.index}`,
    plugins: [
      {
        type: "bridge",
        bridge: network.bridge,
        // The harness owns the gateway address; isGateway would also switch on host forwarding.
        isGateway: false,
        isDefaultGateway: false,
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [
            [
              {
                subnet: network.podCidr,
                rangeStart: `${a}.${b}.${c}.10`,
                rangeEnd: `${a}.${b}.${c}.250`,
                gateway: network.gatewayIp,
              },
            ],
          ],
          // No routes: the kernel's connected route for the pod /24 is the pods' only one (no
          // default route); a `via gateway` route for the /24 would send pod-to-pod traffic to the
          // host, which does not forward.
          routes: [],
          dataDir: join(dir, "ipam"),
        },
      },
      { type: "trellis-api-redirect" },
    ],
  };
  writeFileSync(join(confDir, "10-trellis.conflist"), JSON.stringify(conflist, null, 2));
  return { binDir, confDir };
}

/**
 * A chained CNI plugin (sh + iptables, run by containerd in the host namespace): inside the
 * pod's netns, DNAT the `kubernetes` ClusterIP:443 to the gateway forwarder, route the Service
 * range via the gateway (connect() needs a route before the nat hook runs, where capture
 * redirects a meshed pod's connections to its proxy), and REJECT every other packet to the
 * Service range. Passes the previous result through, as chained plugins must.
 */
function redirectPluginScript(
  network: NodeNetwork,
  redirect: { clusterIp: string; serviceCidr: string; port: number },
): string {
  return `#!/bin/sh
set -eu
conf=$(cat)
case "\${CNI_COMMAND:-}" in
VERSION)
  echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'
  ;;
ADD)
  in_pod() { nsenter --net="$CNI_NETNS" "$@"; }
  in_pod iptables -w -t nat -A OUTPUT -d ${redirect.clusterIp}/32 -p tcp --dport 443 \\
    -j DNAT --to-destination ${network.gatewayIp}:${redirect.port}
  in_pod iptables -w -A OUTPUT -d ${redirect.serviceCidr} -j REJECT
  in_pod ip route add ${redirect.serviceCidr} via ${network.gatewayIp} dev "$CNI_IFNAME"
  printf '%s' "$conf" | /usr/bin/node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const c = JSON.parse(s); const r = c.prevResult || {}; r.cniVersion = c.cniVersion;
      process.stdout.write(JSON.stringify(r));
    });'
  ;;
*)
  ;;
esac
`;
}

/** A TCP forwarder from <gateway IP>:<port> to the API server on loopback, for pods. */
export async function startApiForwarder(
  gatewayIp: string,
  port: number,
  apiServerPort: number,
): Promise<Server> {
  const server = createServer((client) => {
    const upstream = connect({ host: "127.0.0.1", port: apiServerPort });
    client.pipe(upstream).pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, gatewayIp, () => resolve());
  });
  server.unref();
  return server;
}
