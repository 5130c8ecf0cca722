// When a workload counts as done on a version: from its injected pods, or — for a pod the
// fail-open webhook created without a proxy — from the workload's own rollout status.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { podView } from "../resources.ts";
import { inventory, isDoneAt, isRolledOut, type WorkloadObject } from "./workloads.ts";

const deployment = (status: WorkloadObject["status"], generation = 2): WorkloadObject => ({
  kind: "Deployment",
  metadata: { name: "web", namespace: "shop", generation, labels: {} },
  spec: { replicas: 3, template: { metadata: { annotations: { "trellis.dev/proxy-version": "1.1.0" } } } },
  status,
});

function pod(i: number, version: string | undefined, ready = true) {
  return podView({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: `web-abc-${i}`,
      namespace: "shop",
      resourceVersion: String(i),
      labels: { "pod-template-hash": "abc", ...(version ? { "trellis.dev/proxy-version": version } : {}) },
      annotations: { "trellis.dev/leaf-anchor-fingerprint": "f", "kubectl.kubernetes.io/other": "x" },
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-abc", uid: "u", controller: true },
      ],
      managedFields: [{ manager: "kube-controller-manager" }],
    },
    spec: { containers: [{ name: "app", image: "app:1" }] },
    status: {
      phase: "Running",
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Ready", status: ready ? "True" : "False" },
      ],
      containerStatuses: [{ name: "app", image: "app:1", imageID: "", ready, restartCount: 1 }],
    },
  } as Parameters<typeof podView>[0]);
}

const rolledOut = { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3 };

describe("workloads", () => {
  it("the pod view keeps what the rollout and rotation read, and no spec", () => {
    const v = pod(0, "1.1.0");
    assert.equal((v as { spec?: unknown }).spec, undefined);
    assert.deepEqual(v.metadata?.annotations, { "trellis.dev/leaf-anchor-fingerprint": "f" });
    assert.deepEqual(v.status?.conditions, [{ type: "Ready", status: "True" }]);
    assert.deepEqual(v.status?.containerStatuses, [{ name: "app", restartCount: 1 }]);
  });

  it("counts a pod and a template by data-plane revision: version and capture mode", () => {
    const cni = (i: number) => {
      const p = pod(i, "1.1.0");
      if (p.metadata?.labels) p.metadata.labels["trellis.dev/capture-mode"] = "CNI";
      return p;
    };
    const onCni = deployment({});
    const template = onCni.spec?.template?.metadata?.annotations;
    if (template) template["trellis.dev/capture-mode"] = "CNI";
    const [w] = inventory([0, 1, 2].map(cni), [onCni]).workloads;
    assert.ok(w && isDoneAt(w, "1.1.0/cni"));
    assert.ok(w && !isDoneAt(w, "1.1.0"), "the same proxy version with the other capture is not done");
    const [old] = inventory([0, 1, 2].map(cni), [deployment({})]).workloads;
    assert.equal(old?.templateVersion, "1.1.0");
    assert.deepEqual([...(old?.pods.keys() ?? [])], ["1.1.0/cni"]);
  });

  it("is done when every replica is an injected Ready pod of the version", () => {
    const [w] = inventory(
      [0, 1, 2].map((i) => pod(i, "1.1.0")),
      [deployment({})],
    ).workloads;
    assert.ok(w && isDoneAt(w, "1.1.0"));
  });

  it("is done when a replica has no proxy (the webhook failed open) but the Deployment rolled out", () => {
    const pods = [pod(0, "1.1.0"), pod(1, "1.1.0")]; // the third pod carries no proxy label
    const [waiting] = inventory(pods, [deployment({ ...rolledOut, availableReplicas: 2 })]).workloads;
    assert.equal(waiting && isDoneAt(waiting, "1.1.0"), false);
    const [done] = inventory(pods, [deployment(rolledOut)]).workloads;
    assert.ok(done && isDoneAt(done, "1.1.0"));
  });

  it("is not done while a pod of the old version remains, or the status is of an older generation", () => {
    const [mixed] = inventory([pod(0, "1.1.0"), pod(1, "1.0.0")], [deployment(rolledOut)]).workloads;
    assert.equal(mixed && isDoneAt(mixed, "1.1.0"), false);
    assert.equal(isRolledOut(deployment(rolledOut, 3)), false);
  });
});
