// The trellis-cni plugin: its decisions as a table (pure), then the program for real (needs
// root): called as the runtime calls it, on network namespaces this test makes, it installs the
// same rules as trellis-init in a meshed pod's namespace (idempotently), passes the previous
// result on, and leaves unmeshed pods and the node's own namespace untouched.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { defaultCaptureSettings } from "../capture/capture-settings.ts";
import { captureRules } from "../capture/ruleset.ts";
import {
  CAPTURE_ANNOTATION,
  captureAnnotationValue,
  POD_ANNOTATIONS_CAPABILITY,
} from "./capture-annotation.ts";
import { type CniRequest, parseCniArgs, parseRequest, passedResult } from "./cni-protocol.ts";
import { planPlugin } from "./plugin.ts";

const MESHED = captureAnnotationValue(defaultCaptureSettings());
const PREV = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "eth0", sandbox: "/run/netns/x" }],
  ips: [{ address: "10.253.1.12/24", interface: 0 }],
};

function request(
  overrides: Partial<CniRequest> & { annotations?: Record<string, string> | null } = {},
): CniRequest {
  const { annotations = { [CAPTURE_ANNOTATION]: MESHED }, ...rest } = overrides;
  return {
    command: "ADD",
    containerId: "abcdef0123456789",
    netns: "/run/netns/cni-1",
    ifname: "eth0",
    args: { K8S_POD_NAMESPACE: "demo", K8S_POD_NAME: "web-0" },
    config: {
      cniVersion: "1.0.0",
      name: "net",
      type: "trellis-cni",
      prevResult: PREV,
      ...(annotations === null ? {} : { runtimeConfig: { [POD_ANNOTATIONS_CAPABILITY]: annotations } }),
    },
    ...rest,
  };
}

const notNode = { isNodeNamespace: false };

describe("trellis-cni decisions", () => {
  it("answers VERSION and does nothing on DEL, GC and STATUS", () => {
    assert.equal(planPlugin(request({ command: "VERSION" }), notNode).kind, "version");
    for (const command of ["DEL", "GC", "STATUS"])
      assert.equal(planPlugin(request({ command }), notNode).kind, "pass", command);
  });

  it("installs the pod's capture on ADD and verifies it on CHECK", () => {
    const add = planPlugin(request(), notNode);
    assert.equal(add.kind, "install");
    assert.ok(add.kind === "install");
    assert.deepEqual(add.settings, defaultCaptureSettings());
    assert.deepEqual(add.families, [4]);
    assert.equal(planPlugin(request({ command: "CHECK" }), notNode).kind, "verify");
  });

  it("takes the settings of the annotation and the families of the previous result", () => {
    const settings = { ...defaultCaptureSettings(), skipOutboundPorts: [{ from: 5432, to: 5432 }] };
    const annotated = request({ annotations: { [CAPTURE_ANNOTATION]: captureAnnotationValue(settings) } });
    const plan = planPlugin(
      {
        ...annotated,
        config: {
          ...annotated.config,
          prevResult: { ips: [{ address: "10.1.0.4/24" }, { address: "fd00::4/64" }] },
        },
      },
      notNode,
    );
    assert.ok(plan.kind === "install");
    assert.deepEqual(plan.settings.skipOutboundPorts, [{ from: 5432, to: 5432 }]);
    assert.deepEqual(plan.families, [4, 6]);
  });

  it("passes on a pod without the proxy, without annotations, without a namespace, or in the node's namespace", () => {
    const cases: Array<[string, CniRequest, boolean]> = [
      ["no proxy", request({ annotations: { "other/annotation": "x" } }), false],
      ["no annotations passed", request({ annotations: null }), false],
      ["no namespace", request({ netns: "" }), false],
      ["node namespace", request(), true],
    ];
    for (const [name, r, isNode] of cases) {
      const plan = planPlugin(r, { isNodeNamespace: isNode });
      assert.equal(plan.kind, "pass", name);
    }
  });

  it("fails ADD without a previous result (it must be chained) and on a bad annotation", () => {
    const unchained = planPlugin(request({ config: { cniVersion: "1.0.0" } }), notNode);
    assert.ok(unchained.kind === "fail");
    assert.match(unchained.error.msg, /chained plugin/);
    const bad = planPlugin(
      request({ annotations: { [CAPTURE_ANNOTATION]: "--skip-subnets=10.0.0.0/99" } }),
      notNode,
    );
    assert.ok(bad.kind === "fail");
    assert.match(bad.error.msg, /trellis.dev\/capture/);
    assert.match(bad.error.msg, /not a CIDR/);
  });

  it("reads the protocol: CNI_ARGS, a missing command, a config that is not JSON, the passed result", () => {
    assert.deepEqual(parseCniArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=a=b"), {
      IgnoreUnknown: "1",
      K8S_POD_NAMESPACE: "demo",
      K8S_POD_NAME: "a=b",
    });
    const noCommand = parseRequest({}, "{}");
    assert.ok(!noCommand.ok && noCommand.error.code === 4);
    const notJson = parseRequest({ CNI_COMMAND: "ADD" }, "[1]");
    assert.ok(!notJson.ok && notJson.error.code === 6);
    const passed = JSON.parse(passedResult({ cniVersion: "1.1.0", prevResult: PREV }));
    assert.deepEqual(passed, { ...PREV, cniVersion: "1.1.0" });
  });
});

const entry = fileURLToPath(new URL("./main.ts", import.meta.url));
const tag = `${process.pid % 100000}`;
const MESHED_NS = `trellis-cni-meshed-${tag}`;
const PLAIN_NS = `trellis-cni-plain-${tag}`;
/** A name for the node's own namespace (this process's), as a runtime could wrongly pass it. */
const NODE_NS = `trellis-cni-node-${tag}`;

function plugin(command: string, netns: string, config: object) {
  const r = spawnSync(process.execPath, ["--import", "tsx", entry], {
    input: JSON.stringify(config),
    encoding: "utf8",
    env: {
      ...process.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: "c0ffee",
      CNI_NETNS: netns,
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0",
      CNI_PATH: "/usr/lib/cni",
    },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const natRules = (ns: string) =>
  execFileSync("ip", ["netns", "exec", ns, "iptables-nft-save", "-t", "nat"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.startsWith("-A"))
    .map((l) => l.replace(" -m tcp", ""));

describe("trellis-cni as the runtime runs it", { timeout: 120_000 }, () => {
  before(() => {
    for (const ns of [MESHED_NS, PLAIN_NS]) execFileSync("ip", ["netns", "add", ns]);
    execFileSync("ip", ["netns", "attach", NODE_NS, String(process.pid)]);
  });
  after(() => {
    for (const ns of [MESHED_NS, PLAIN_NS, NODE_NS]) spawnSync("ip", ["netns", "del", ns]);
  });

  const config = (annotations: Record<string, string>) => ({
    cniVersion: "1.0.0",
    name: "test",
    type: "trellis-cni",
    prevResult: PREV,
    runtimeConfig: { [POD_ANNOTATIONS_CAPABILITY]: annotations },
  });

  it("installs exactly trellis-init's rules in a meshed pod's namespace, once, and passes the result on", () => {
    const netns = `/run/netns/${MESHED_NS}`;
    const first = plugin("ADD", netns, config({ [CAPTURE_ANNOTATION]: MESHED }));
    assert.equal(first.status, 0, first.stdout + first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), PREV);
    assert.match(first.stderr, /capture installed/);
    const want = [
      ...captureRules(defaultCaptureSettings(), 4),
      "-A PREROUTING -j TRELLIS_INBOUND",
      "-A OUTPUT -j TRELLIS_OUTPUT",
    ].sort();
    assert.deepEqual(natRules(MESHED_NS).sort(), want);
    const again = plugin("ADD", netns, config({ [CAPTURE_ANNOTATION]: MESHED }));
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(natRules(MESHED_NS).sort(), want, "a second ADD adds nothing");
    const check = plugin("CHECK", netns, config({ [CAPTURE_ANNOTATION]: MESHED }));
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.equal(plugin("DEL", netns, config({ [CAPTURE_ANNOTATION]: MESHED })).status, 0);
  });

  it("leaves a pod without the proxy and the node's own namespace untouched", () => {
    const plain = plugin("ADD", `/run/netns/${PLAIN_NS}`, config({ app: "web" }));
    assert.equal(plain.status, 0, plain.stderr);
    assert.deepEqual(JSON.parse(plain.stdout), PREV);
    assert.deepEqual(natRules(PLAIN_NS), []);
    const check = plugin("CHECK", `/run/netns/${PLAIN_NS}`, config({ [CAPTURE_ANNOTATION]: MESHED }));
    assert.equal(check.status, 1, "CHECK of a meshed pod without rules fails");
    assert.equal(JSON.parse(check.stdout).code, 101);
    const hostBefore = spawnSync("iptables-nft-save", ["-t", "nat"], { encoding: "utf8" }).stdout;
    const node = plugin("ADD", `/run/netns/${NODE_NS}`, config({ [CAPTURE_ANNOTATION]: MESHED }));
    assert.equal(node.status, 0, node.stderr);
    assert.match(node.stderr, /node's own network namespace/);
    const hostAfter = spawnSync("iptables-nft-save", ["-t", "nat"], { encoding: "utf8" }).stdout;
    assert.ok(!hostAfter.includes("TRELLIS"), "no capture chain in the node's namespace");
    assert.equal(hostAfter.replace(/^#.*$/gm, ""), hostBefore.replace(/^#.*$/gm, ""));
  });

  it("answers VERSION", () => {
    const r = plugin("VERSION", "", { cniVersion: "1.0.0" });
    assert.equal(r.status, 0);
    assert.ok(JSON.parse(r.stdout).supportedVersions.includes("1.0.0"));
  });
});
