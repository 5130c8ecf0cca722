// The end-to-end test's manifests parse, before a 9-minute run finds out they do not: every
// document of the demo and of the capture checks is YAML with a kind, and the pods carry what the
// test relies on (the real node's placement, the client's skipped stats port).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { captureCheckWorkloads } from "./capture-checks.ts";
import { demoWorkloads } from "./mesh-demo.ts";

function documents(text: string): Array<Record<string, unknown>> {
  return parseAllDocuments(text).map((d) => {
    assert.deepEqual(d.errors, [], String(d.errors[0]?.message));
    return d.toJS() as Record<string, unknown>;
  });
}

describe("end-to-end manifests", () => {
  it("the demo and the capture checks parse, each document a kind", () => {
    const all = [
      ...documents(demoWorkloads("demo", 5)),
      ...documents(captureCheckWorkloads("demo", 1000, "localhost/trellis/init:0.1.0")),
    ];
    assert.ok(all.every((d) => typeof d.kind === "string"));
    const kinds = all.map((d) => d.kind).join(" ");
    assert.match(kinds, /Deployment.*Job.*Pod/);
  });

  it("places every pod on the real node", () => {
    for (const d of [
      ...documents(demoWorkloads("demo", 5)),
      ...documents(captureCheckWorkloads("demo", 1000, "localhost/trellis/init:0.1.0")),
    ]) {
      const spec = d.spec as { template?: { spec?: Record<string, unknown> } } & Record<string, unknown>;
      const pod = d.kind === "Pod" ? spec : spec?.template?.spec;
      if (!pod) continue;
      assert.deepEqual(pod.nodeSelector, { "trellis.dev/real-node": "true" }, String(d.kind));
    }
  });
});
