// trellis-init for real, in network namespaces this test makes (needs root): a "pod" namespace
// and a "peer" namespace joined by a veth pair. Checks that the rules install with both
// backends, that a second run changes nothing, that connections are really captured (the peer's
// connection to the pod lands on the inbound port, the pod's connection to the peer on the
// outbound port) except those of the proxy's UID and skipped ports, and that missing
// capabilities and bad flags fail with a message naming the cause.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { capabilitySets, missingCapabilities, parseInitFlags } from "./init.ts";

const entry = fileURLToPath(new URL("./init-main.ts", import.meta.url));
const tag = `${process.pid % 100000}`;
const POD = `trellis-init-pod-${tag}`;
const PEER = `trellis-init-peer-${tag}`;
const POD_IP = "10.77.0.2";
const PEER_IP = "10.77.0.3";

function ip(args: string[]): void {
  execFileSync("ip", args, { stdio: "pipe" });
}

function inNs(ns: string, command: string, args: string[], input?: string) {
  return spawnSync("ip", ["netns", "exec", ns, command, ...args], { encoding: "utf8", input });
}

function init(ns: string, flags: string[], user?: number) {
  const prefix =
    user === undefined
      ? []
      : [
          "setpriv",
          `--reuid=${user}`,
          `--regid=${user}`,
          "--clear-groups",
          "--inh-caps=-all",
          "--bounding-set=-all",
        ];
  const [command = "", ...rest] = [...prefix, process.execPath, "--import", "tsx", entry, ...flags];
  const r = inNs(ns, command, rest);
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const save = (ns: string, backend: string) => inNs(ns, `iptables-${backend}-save`, ["-t", "nat"]).stdout;
const rulesOf = (text: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith("-A") || l.startsWith(":TRELLIS"))
    .join("\n");

/** A TCP listener in `ns` on `port` that answers every connection with `name` and closes. */
function listen(ns: string, host: string, port: number, name: string) {
  const script = `require("net").createServer((s) => s.end(${JSON.stringify(name)})).listen(${port}, ${JSON.stringify(host)}, () => console.log("up"));`;
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise<typeof child>((resolve) => child.stdout.once("data", () => resolve(child)));
}

/** Connects from `ns` (as `uid` when given) and returns what the server said, or the error code. */
function dial(ns: string, host: string, port: number, uid?: number): string {
  const script = `const s = require("net").connect(${port}, ${JSON.stringify(host)}); let d = ""; s.setTimeout(1500, () => { console.log("TIMEOUT"); process.exit(); }); s.on("data", (c) => (d += c)); s.on("end", () => { console.log(d); process.exit(); }); s.on("error", (e) => { console.log(e.code); process.exit(); });`;
  const prefix = uid === undefined ? [] : ["setpriv", `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups"];
  const [command = "", ...rest] = [...prefix, process.execPath, "-e", script];
  return inNs(ns, command, rest).stdout.trim();
}

describe("trellis-init in a network namespace", { timeout: 120_000 }, () => {
  const listeners: Array<{ kill(): void }> = [];
  before(async () => {
    ip(["netns", "add", POD]);
    ip(["netns", "add", PEER]);
    ip([
      "link",
      "add",
      `tip${tag}`,
      "netns",
      POD,
      "type",
      "veth",
      "peer",
      "name",
      `tpe${tag}`,
      "netns",
      PEER,
    ]);
    for (const [ns, dev, addr] of [
      [POD, `tip${tag}`, POD_IP],
      [PEER, `tpe${tag}`, PEER_IP],
    ] as const) {
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "addr", "add", `${addr}/24`, "dev", dev]);
      ip(["-n", ns, "link", "set", dev, "up"]);
    }
    listeners.push(await listen(POD, "0.0.0.0", 4143, "pod-inbound-proxy"));
    listeners.push(await listen(POD, "127.0.0.1", 4140, "pod-outbound-proxy"));
    listeners.push(await listen(POD, "0.0.0.0", 8080, "pod-app"));
    listeners.push(await listen(POD, "0.0.0.0", 9090, "pod-app-skipped"));
    listeners.push(await listen(PEER, "0.0.0.0", 8080, "peer-app"));
    listeners.push(await listen(PEER, "0.0.0.0", 5432, "peer-db"));
  });
  after(() => {
    for (const l of listeners) l.kill();
    spawnSync("ip", ["netns", "del", POD]);
    spawnSync("ip", ["netns", "del", PEER]);
  });

  it("installs the rules (nf_tables backend), and a second run changes nothing", () => {
    const flags = ["--skip-inbound-ports=4140,4143,4191,9090", "--skip-outbound-ports=5432"];
    const first = init(POD, flags);
    assert.equal(first.status, 0, first.out);
    assert.match(first.out, /backend nft \(nf_tables works\)/);
    assert.match(first.out, /IPv4: \d+ rules in TRELLIS_INBOUND and TRELLIS_OUTPUT \(nft\)/);
    const installed = rulesOf(save(POD, "nft"));
    const second = init(POD, flags);
    assert.equal(second.status, 0, second.out);
    assert.equal(rulesOf(save(POD, "nft")), installed);
    assert.equal(installed.match(/-A PREROUTING -j TRELLIS_INBOUND/g)?.length, 1);
    assert.equal(installed.match(/-A OUTPUT -j TRELLIS_OUTPUT/g)?.length, 1);
  });

  it("captures every TCP connection except the proxy's, loopback and skipped ports", () => {
    // Inbound: the peer dials the app's port and reaches the inbound proxy; a skipped port and
    // the proxy's own port are not redirected.
    assert.equal(dial(PEER, POD_IP, 8080), "pod-inbound-proxy");
    assert.equal(dial(PEER, POD_IP, 9090), "pod-app-skipped");
    assert.equal(dial(PEER, POD_IP, 4143), "pod-inbound-proxy");
    // Outbound: the app dials the peer and reaches the outbound proxy; the proxy's UID, a
    // skipped port and loopback go where they were sent.
    assert.equal(dial(POD, PEER_IP, 8080, 1000), "pod-outbound-proxy");
    assert.equal(dial(POD, PEER_IP, 8080, 2102), "peer-app");
    assert.equal(dial(POD, PEER_IP, 5432, 1000), "peer-db");
    assert.equal(dial(POD, "127.0.0.1", 8080, 1000), "pod-app");
    assert.equal(dial(POD, POD_IP, 8080, 1000), "pod-app", "the pod's own IP is loopback-routed");
  });

  it("works with the legacy backend when asked", () => {
    const r = init(POD, ["--iptables-mode=legacy"]);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /backend legacy/);
    assert.match(rulesOf(save(POD, "legacy")), /-A OUTPUT -j TRELLIS_OUTPUT/);
  });

  it("fails with a message naming the cause when it lacks NET_ADMIN", () => {
    const r = init(POD, [], 65532);
    assert.equal(r.status, 1);
    assert.match(
      r.out,
      /cannot program the capture rules: the container was not granted NET_ADMIN and NET_RAW/,
    );
    assert.match(r.out, /Pod Security Standard \(baseline or restricted\)/);
  });

  it("refuses bad flags", () => {
    assert.throws(
      () => parseInitFlags(["--skip-subnets=10.0.0.0/40"]),
      /--skip-subnets: "10.0.0.0\/40" is not a CIDR/,
    );
    assert.throws(() => parseInitFlags(["--skip-outbound-ports=70000"]), /is not a port/);
    assert.throws(() => parseInitFlags(["--iptables-mode=ebpf"]), /auto, nft or legacy/);
    assert.equal(
      missingCapabilities(capabilitySets("CapEff:\t0000000000003000\nCapBnd:\t0000000000003000\n")),
      undefined,
    );
  });
});
