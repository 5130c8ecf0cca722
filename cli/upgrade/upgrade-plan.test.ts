import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import type { NamespaceView } from "../../operator/rollout/data-plane.ts";
import { notMeshed } from "./upgrade-plan.ts";

function spec(injection: Record<string, unknown>): MeshSpec {
  const checked = validateMeshSpec({ version: "0.2.0", injection });
  assert.ok(checked.ok, JSON.stringify(checked));
  return checked.value;
}

const deploymentPod = (ns: string, name: string, extra: Partial<V1Pod["metadata"]> = {}): V1Pod => ({
  metadata: {
    namespace: ns,
    name: `${name}-7d9f-abcde`,
    labels: { "pod-template-hash": "7d9f", app: name, ...(extra.labels ?? {}) },
    annotations: extra.annotations,
    ownerReferences: [
      { apiVersion: "apps/v1", kind: "ReplicaSet", name: `${name}-7d9f`, uid: "u", controller: true },
    ],
  },
  spec: { containers: [{ name: "app", image: "app" }] },
  status: { phase: "Running" },
});

const barePod: V1Pod = {
  metadata: { namespace: "shop", name: "debug" },
  spec: { containers: [{ name: "app", image: "app" }] },
  status: { phase: "Running" },
};

const namespaces = new Map<string, NamespaceView>([
  ["shop", { name: "shop", labels: { team: "shop" }, annotations: { "trellis.dev/inject": "enabled" } }],
]);

describe("upgrade plan: pods without a proxy in meshed namespaces", () => {
  const pods = [
    deploymentPod("shop", "web"),
    deploymentPod("shop", "legacy", { annotations: { "trellis.dev/inject": "disabled" } }),
    deploymentPod("shop", "canary-only", { labels: { tier: "batch" } }),
    barePod,
  ];

  it("says the repair restarts a workload the census counts as missing its proxy, and which it never restarts", () => {
    const out = notMeshed({
      otherPods: pods,
      namespaces,
      desired: spec({
        repair: "Restart",
        podSelector: { matchExpressions: [{ key: "tier", operator: "NotIn", values: ["batch"] }] },
      }),
    });
    const why = new Map(out.map((o) => [`${o.kind} ${o.namespace}/${o.name}`, o.reason]));
    assert.match(
      why.get("Deployment shop/web") ?? "",
      /should have a proxy.*the data-plane repair restarts it/,
    );
    assert.match(
      why.get("bare pod shop/debug") ?? "",
      /should have a proxy.*a repair never restarts a bare pod/,
    );
    assert.match(why.get("Deployment shop/legacy") ?? "", /opted out/);
    assert.equal(why.get("Deployment shop/canary-only"), "outside spec.injection.podSelector");
    assert.equal(out.length, 4);
  });

  it("with repair: Report, says it is only reported", () => {
    const out = notMeshed({
      otherPods: [deploymentPod("shop", "web")],
      namespaces,
      desired: spec({ repair: "Report" }),
    });
    assert.match(out[0]?.reason ?? "", /reported only \(spec\.injection\.repair: Report\)/);
  });

  it("leaves out pods that have ended or are being deleted", () => {
    const done = { ...barePod, status: { phase: "Succeeded" } };
    const deleting = deploymentPod("shop", "web", {});
    deleting.metadata!.deletionTimestamp = new Date();
    assert.deepEqual(notMeshed({ otherPods: [done, deleting], namespaces, desired: spec({}) }), []);
  });
});
