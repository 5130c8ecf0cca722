// Which meshed pods rely on trellis-cni, which their validator refused, and which to restart.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CAPTURE_ANNOTATION } from "../../cni/capture-annotation.ts";
import { VALIDATOR_CONTAINER } from "../../cni/validator.ts";
import type { PodView } from "../resources.ts";
import { CNI_PHASE_LABEL } from "./cni-plan.ts";
import { cniPods, nodesWithPlugin, podsToRestart, refusedPods } from "./cni-pods.ts";

function pod(
  name: string,
  opts: { cni?: boolean; failed?: boolean; ready?: boolean; node?: string; bare?: boolean },
): PodView {
  return {
    metadata: {
      name,
      namespace: "demo",
      uid: `uid-${name}`,
      annotations: opts.cni === false ? {} : { [CAPTURE_ANNOTATION]: "--inbound-port=4143" },
      ownerReferences: opts.bare
        ? []
        : [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-1", uid: "rs", controller: true }],
    },
    spec: { nodeName: opts.node ?? "node-a" },
    status: {
      conditions: [{ type: "Ready", status: opts.ready ? "True" : "False" }],
      initContainerStatuses: [
        {
          name: VALIDATOR_CONTAINER,
          restartCount: 2,
          ...(opts.failed ? { failed: { exitCode: 1, message: "trellis-cni validate: not captured" } } : {}),
        },
      ],
    },
  };
}

const installer = (node: string, ready: boolean, phase = "Install"): PodView => ({
  metadata: {
    name: `trellis-cni-${node}`,
    namespace: "trellis-system",
    labels: { [CNI_PHASE_LABEL]: phase },
  },
  spec: { nodeName: node },
  status: { conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

describe("CNI-mode pods", () => {
  const pods = [
    pod("ok", { ready: true }),
    pod("refused", { failed: true }),
    pod("refused-elsewhere", { failed: true, node: "node-b" }),
    pod("bare", { failed: true, bare: true }),
    pod("init-mode", { cni: false, failed: true }),
  ];
  it("counts the pods that rely on the plugin and finds the refused ones", () => {
    assert.equal(cniPods(pods).length, 4);
    assert.deepEqual(
      refusedPods(pods).map((p) => [p.name, p.node, p.controlled]),
      [
        ["bare", "node-a", false],
        ["refused", "node-a", true],
        ["refused-elsewhere", "node-b", true],
      ],
    );
  });
  it("restarts only controlled pods on nodes whose installer is ready in the Install phase", () => {
    const nodes = nodesWithPlugin([
      installer("node-a", true),
      installer("node-b", false),
      installer("node-c", true, "Uninstall"),
    ]);
    assert.deepEqual([...nodes], ["node-a"]);
    assert.deepEqual(
      podsToRestart(refusedPods(pods), nodes).map((p) => p.name),
      ["refused"],
    );
  });
});
