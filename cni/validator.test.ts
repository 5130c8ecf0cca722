// The validator: where it probes (pure), then for real in a network namespace made like a
// harness pod's (needs root): refused before capture is installed, passes once the plugin has
// installed it, and fails when run as the proxy's UID (whose connections are never captured).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { defaultCaptureSettings, PROXY_UID } from "../capture/capture-settings.ts";
import { initFlags } from "../capture/init.ts";
import {
  CAPTURE_ANNOTATION,
  captureAnnotationValue,
  POD_ANNOTATIONS_CAPABILITY,
} from "./capture-annotation.ts";
import { probeTarget, routesOf } from "./validator.ts";

const HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
const DEFAULT_ROUTE = `${HEADER}eth0\t00000000\t0101FD0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\neth0\t0001FD0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;
/** The harness's pods: their /24 on-link and the Service range via the gateway, no default. */
const HARNESS = `${HEADER}eth0\t0001FD0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\neth0\t0000000A\t0101FD0A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;

describe("where the validator probes", () => {
  const settings = defaultCaptureSettings();
  it("reads /proc/net/route", () => {
    assert.deepEqual(routesOf(HARNESS), [
      { cidr: "10.253.1.0/24", viaGateway: false },
      { cidr: "10.0.0.0/24", viaGateway: true },
    ]);
  });
  it("a documentation address with a default route, the next one when that is skipped", () => {
    assert.deepEqual(probeTarget(settings, DEFAULT_ROUTE), { host: "192.0.2.1", port: 20001 });
    const skipped = {
      ...settings,
      skipSubnets: ["192.0.2.0/24"],
      skipOutboundPorts: [{ from: 20000, to: 20003 }],
    };
    assert.deepEqual(probeTarget(skipped, DEFAULT_ROUTE), { host: "198.51.100.1", port: 29999 });
  });
  it("without a default route, an address routed through the gateway, else an on-link one", () => {
    assert.deepEqual(probeTarget(settings, HARNESS), { host: "10.0.0.254", port: 20001 });
    const onLink = `${HEADER}eth0\t0001FD0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;
    const onlyApi = `${onLink}eth0\t0100000A\t0101FD0A\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n`;
    assert.deepEqual(probeTarget(settings, onlyApi), { host: "10.0.0.1", port: 20001 });
    assert.deepEqual(probeTarget(settings, onLink), { host: "10.253.1.254", port: 20001 });
    assert.ok("none" in probeTarget(settings, HEADER));
  });
});

const entry = fileURLToPath(new URL("./main.ts", import.meta.url));
const NS = `trellis-cni-val-${process.pid % 100000}`;
/** The other end of the pod's link: a namespace of the test's own, which forwards nothing. */
const PEER = `${NS}-gw`;
const inNs = (args: string[]) => execFileSync("ip", ["netns", "exec", NS, ...args], { stdio: "pipe" });

function validate(uid: number) {
  const r = spawnSync(
    "ip",
    [
      "netns",
      "exec",
      NS,
      "setpriv",
      `--reuid=${uid}`,
      `--regid=${uid}`,
      "--clear-groups",
      "--inh-caps=-all",
      "--bounding-set=-all",
      process.execPath,
      "--import",
      "tsx",
      entry,
      "validate",
      ...initFlags(defaultCaptureSettings()),
    ],
    { encoding: "utf8" },
  );
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe("the validator in a pod's namespace", { timeout: 120_000 }, () => {
  before(() => {
    execFileSync("ip", ["netns", "add", NS]);
    execFileSync("ip", ["netns", "add", PEER]);
    inNs(["ip", "link", "set", "lo", "up"]);
    inNs(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "gw0", "netns", PEER]);
    inNs(["ip", "addr", "add", "10.66.0.2/24", "dev", "eth0"]);
    inNs(["ip", "link", "set", "eth0", "up"]);
    inNs(["ip", "route", "add", "10.96.0.0/24", "via", "10.66.0.1", "dev", "eth0"]);
    // As the harness does: nothing to the Service range leaves the pod uncaptured.
    inNs(["iptables", "-A", "OUTPUT", "-d", "10.96.0.0/24", "-j", "REJECT"]);
  });
  after(() => {
    spawnSync("ip", ["netns", "del", NS]);
    spawnSync("ip", ["netns", "del", PEER]);
  });

  it("refuses the pod, saying why, while capture is not in place", () => {
    const r = validate(65532);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /10\.96\.0\.254:20001 was not redirected/);
    assert.match(r.out, /started before trellis-cni was installed on its node/);
  });

  it("passes once the plugin has installed capture, and never as the proxy's user", () => {
    const add = spawnSync(process.execPath, ["--import", "tsx", entry], {
      input: JSON.stringify({
        cniVersion: "1.0.0",
        name: "t",
        type: "trellis-cni",
        prevResult: { ips: [{ address: "10.66.0.2/24" }] },
        runtimeConfig: {
          [POD_ANNOTATIONS_CAPABILITY]: {
            [CAPTURE_ANNOTATION]: captureAnnotationValue(defaultCaptureSettings()),
          },
        },
      }),
      encoding: "utf8",
      env: { ...process.env, CNI_COMMAND: "ADD", CNI_NETNS: `/run/netns/${NS}`, CNI_IFNAME: "eth0" },
    });
    assert.equal(add.status, 0, add.stdout + add.stderr);
    const r = validate(65532);
    assert.equal(r.status, 0, r.out);
    assert.match(
      r.out,
      /capture is in place \(a connection to 10\.96\.0\.254:20001 reached 127\.0\.0\.1:4140\)/,
    );
    assert.equal(validate(PROXY_UID).status, 1, "the proxy's own connections are not captured");
  });
});
