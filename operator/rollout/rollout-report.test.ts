// status.proxies: finished pods count nowhere; pods the rollout will not restart are named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { podView } from "../resources.ts";
import { proxyStatus } from "./rollout-report.ts";
import { inventory } from "./workloads.ts";

function pod(
  name: string,
  version: string,
  owner: { kind: string; name: string } | undefined,
  phase = "Running",
) {
  return podView({
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "shop",
      labels: { "trellis.dev/proxy-version": version },
      ownerReferences: owner
        ? [{ apiVersion: "v1", kind: owner.kind, name: owner.name, uid: "u", controller: true }]
        : [],
    },
    status: { phase },
  } as Parameters<typeof podView>[0]);
}

describe("status.proxies", () => {
  it("leaves finished pods out and counts Jobs and bare pods as pending", () => {
    const pods = [
      pod("report-1", "1.0.0", { kind: "Job", name: "report" }),
      pod("old-1", "1.0.0", { kind: "Job", name: "old" }, "Succeeded"),
      pod("crashed-1", "1.0.0", { kind: "Job", name: "crashed" }, "Failed"),
      pod("debug", "1.0.0", undefined),
      pod("new-1", "1.1.0", { kind: "Job", name: "new" }),
    ];
    const { others } = inventory(pods, []);
    assert.deepEqual(
      others.map((o) => o.key),
      ["Job/shop/new", "Job/shop/report", "Pod/shop/debug"],
    );
    assert.deepEqual(proxyStatus(pods, [], others, "1.1.0", "1.1.0"), {
      total: 3,
      updated: 1,
      pending: 2,
      summary: "1/3 (2 pending)",
      version: "1.1.0",
    });
  });
});
