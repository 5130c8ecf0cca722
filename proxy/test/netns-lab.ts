/**
 * Test fixture: a small node made of network namespaces, for transparent capture through real
 * nat REDIRECT rules. One namespace holds a bridge; each "pod" is a namespace with a veth on it,
 * an address in 198.18.<n>.0/24 (RFC 2544's benchmarking range) and one in fd16:<n>::/64 (a
 * unique local range) — the namespaces are wired only to each other, so no packet can reach the
 * host or a real network — and a route for the "Service" range 198.19.<n>.0/24 that goes
 * nowhere: only capture makes a ClusterIP reachable.
 *
 * Meshed pods get the rules the injector's init container installs (inbound → 4143 except the
 * proxy's ports; outbound → 4140 except the proxy's UID and loopback); their proxy runs as UID
 * 2102. Processes inside are `ip netns exec` children, killed by PID; the control plane in the
 * test process is reached through Unix sockets (files cross namespaces, TCP does not).
 *
 * Owns: namespaces, links, rules and their removal. Requires root; `available()` says why not.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { join } from "node:path";
import { tempDir } from "./proxy-process.ts";

const repoRoot = new URL("../../", import.meta.url).pathname;
export const PROXY_UID = 2102;
const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
});

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Undefined when capture tests can run here; otherwise why not. */
export function unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (network namespaces and nat rules)";
  for (const tool of ["ip", "iptables-restore", "ip6tables-restore", "setpriv"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    } catch {
      return `needs ${tool}`;
    }
  }
  return undefined;
}

export function meshRules(): string {
  return [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    "-A PREROUTING -p tcp -m multiport --dports 4143,4140,4191 -j RETURN",
    "-A PREROUTING -p tcp -j REDIRECT --to-ports 4143",
    `-A OUTPUT -p tcp -m owner --uid-owner ${PROXY_UID} -j RETURN`,
    "-A OUTPUT -o lo -j RETURN",
    "-A OUTPUT -p tcp -j REDIRECT --to-ports 4140",
    "COMMIT",
    "",
  ].join("\n");
}

export interface LabProcess {
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `argv` inside namespace `ns` (as `uid` when given); resolves once `readyLine` is printed. */
export async function startIn(
  ns: string,
  argv: string[],
  o: { uid?: number; env?: Record<string, string>; readyPattern?: RegExp } = {},
): Promise<LabProcess> {
  const asUser =
    o.uid === undefined ? [] : ["setpriv", `--reuid=${o.uid}`, `--regid=${o.uid}`, "--clear-groups", "--"];
  const child = spawn("ip", ["netns", "exec", ns, ...asUser, ...argv], {
    cwd: repoRoot,
    env: { ...process.env, ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => {
    out += d;
  });
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      live.delete(child);
      resolve();
    }),
  );
  const pattern = o.readyPattern ?? /ready/;
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (pattern.test(out)) resolve();
    };
    child.stdout!.on("data", check);
    child.stderr!.on("data", check);
    void exited.then(() => reject(new Error(`${argv.join(" ")} exited in ${ns}:\n${out}`)));
  });
  return {
    pid: child.pid!,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, "SIGTERM");
      const timer = setTimeout(() => {
        if (child.exitCode === null) process.kill(child.pid!, "SIGKILL");
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface Pod {
  name: string;
  ns: string;
  ip: string;
  ipv6: string;
  /** Runs the agent (netns-agent.ts) with `args`; returns a function sending it commands. */
  agent(args: string[]): Promise<(path: string, command: object) => Promise<Record<string, unknown>>>;
}

export class NetnsLab {
  readonly dir = tempDir("netns");
  readonly subnet: string;
  readonly serviceNet: string;
  readonly subnet6: string;
  private readonly prefix: string;
  private readonly namespaces: string[] = [];
  private readonly processes: LabProcess[] = [];
  private readonly servers: net.Server[] = [];
  /** Both ends of every bridged connection, destroyed on close so the control plane's servers can stop. */
  private readonly bridged = new Set<net.Socket>();
  private pods = 0;

  constructor() {
    removeLeftovers();
    chmodSync(this.dir, 0o755);
    const n = 1 + (process.pid % 250);
    this.subnet = `198.18.${n}`;
    this.serviceNet = `198.19.${n}`;
    this.subnet6 = `fd16:${n.toString(16)}:`;
    this.prefix = `trl16-${process.pid}`;
    const node = `${this.prefix}-node`;
    ip("netns", "add", node);
    this.namespaces.push(node);
    ip("-n", node, "link", "add", "br0", "type", "bridge");
    ip("-n", node, "link", "set", "br0", "up");
  }

  /** A pod namespace on the bridge; `meshed` installs the capture rules. */
  addPod(name: string, meshed: boolean): Pod {
    const ns = `${this.prefix}-${name}`;
    const index = ++this.pods;
    const address = `${this.subnet}.${index + 1}`;
    const address6 = `${this.subnet6}:${(index + 1).toString(16)}`;
    const node = this.namespaces[0]!;
    ip("netns", "add", ns);
    this.namespaces.push(ns);
    ip("-n", node, "link", "add", `v${index}`, "type", "veth", "peer", "name", "eth0", "netns", ns);
    ip("-n", node, "link", "set", `v${index}`, "master", "br0", "up");
    ip("-n", ns, "link", "set", "lo", "up");
    ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0");
    ip("-n", ns, "-6", "addr", "add", `${address6}/64`, "dev", "eth0", "nodad");
    ip("-n", ns, "link", "set", "eth0", "up");
    ip("-n", ns, "route", "add", `${this.serviceNet}.0/24`, "dev", "eth0");
    if (meshed) {
      for (const tool of ["iptables-restore", "ip6tables-restore"]) {
        execFileSync("ip", ["netns", "exec", ns, tool], { input: meshRules() });
      }
    }
    const pod: Pod = {
      name,
      ns,
      ip: address,
      ipv6: address6,
      agent: async (args) => {
        const control = join(this.dir, `${name}-${this.processes.length}.sock`);
        const p = await startIn(
          ns,
          [process.execPath, "--import", "tsx", "proxy/test/netns-agent.ts", control, ...args],
          {
            readyPattern: /agent ready/,
          },
        );
        this.processes.push(p);
        return (path, command) => agentCall(control, path, command);
      },
    };
    return pod;
  }

  /** A Unix socket that leads to 127.0.0.1:`port` in the test's namespace (the control plane). */
  bridgeToHost(port: number): Promise<string> {
    const path = join(this.dir, `bridge-${port}.sock`);
    const server = net.createServer((c) => {
      const upstream = net.connect(port, "127.0.0.1");
      for (const s of [c, upstream]) {
        this.bridged.add(s);
        s.once("close", () => this.bridged.delete(s));
      }
      c.on("error", () => upstream.destroy());
      upstream.on("error", () => c.destroy());
      c.once("close", () => upstream.destroy());
      upstream.once("close", () => c.destroy());
      c.pipe(upstream).pipe(c);
    });
    this.servers.push(server);
    return new Promise((resolve) =>
      server.listen(path, () => {
        chmodSync(path, 0o777);
        resolve(path);
      }),
    );
  }

  track(p: LabProcess): LabProcess {
    this.processes.push(p);
    return p;
  }

  async close(): Promise<void> {
    if (process.env.TRELLIS_TEST_VERBOSE) for (const p of this.processes) process.stderr.write(p.output());
    await Promise.all(this.processes.map((p) => p.stop()));
    for (const s of this.servers) s.close();
    for (const s of this.bridged) s.destroy();
    for (const ns of this.namespaces.reverse()) {
      try {
        ip("netns", "del", ns);
      } catch {
        // already gone
      }
    }
  }
}

/** Namespaces of labs whose test process died without closing them (killed by a time-out). */
function removeLeftovers(): void {
  const names = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const m of names.matchAll(/^trl16-(\d+)-\S+/gm)) {
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) {
      try {
        ip("netns", "del", m[0]);
      } catch {
        // raced with another cleaner
      }
    }
  }
}

function agentCall(socketPath: string, path: string, command: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path, method: "POST", agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve(JSON.parse(body) as Record<string, unknown>));
    });
    req.on("error", reject);
    req.end(JSON.stringify(command));
  });
}
