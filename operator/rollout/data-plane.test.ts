// Which pods should carry the proxy and do not, which proxies are out of skew, and by whom.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import { podView, uninjectedPodView } from "../resources.ts";
import {
  dataPlaneCensus,
  describeGaps,
  gapsByOwner,
  meantToBeMeshed,
  type NamespaceView,
} from "./data-plane.ts";

const injection = (over: Record<string, unknown> = {}): MeshSpec["injection"] => {
  const r = validateMeshSpec({ version: "1.0.0", injection: over });
  assert.ok(r.ok);
  return r.value.injection;
};

const namespaces: Record<string, NamespaceView> = {
  shop: { name: "shop", labels: { team: "shop" }, annotations: { "trellis.dev/inject": "enabled" } },
  bank: { name: "bank", labels: { team: "bank" }, annotations: {} },
  "kube-system": { name: "kube-system", labels: {}, annotations: { "trellis.dev/inject": "enabled" } },
};

function pod(
  name: string,
  namespace: string,
  opts: {
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    hostNetwork?: boolean;
    containers?: string[];
    owner?: string;
    version?: string;
    phase?: string;
  } = {},
) {
  const raw = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      annotations: opts.annotations,
      labels: { ...opts.labels, ...(opts.version ? { "trellis.dev/proxy-version": opts.version } : {}) },
      ownerReferences: opts.owner
        ? [
            {
              apiVersion: "apps/v1",
              kind: "ReplicaSet",
              name: `${opts.owner}-abc`,
              uid: "u",
              controller: true,
            },
          ]
        : [],
      creationTimestamp: "2026-12-05T12:00:00Z",
    },
    spec: {
      hostNetwork: opts.hostNetwork,
      containers: (opts.containers ?? ["app"]).map((n) => ({ name: n })),
    },
    status: { phase: opts.phase ?? "Running" },
  } as unknown as Parameters<typeof podView>[0];
  if (opts.owner && raw.metadata?.labels) raw.metadata.labels["pod-template-hash"] = "abc";
  return opts.version ? podView(raw) : uninjectedPodView(raw);
}

describe("data-plane census", () => {
  it("follows the injector's rules and its webhook's selectors", () => {
    const meshed = (p: ReturnType<typeof pod>, inj = injection()) =>
      meantToBeMeshed(p, namespaces[p.metadata?.namespace ?? ""], inj).meshed;
    assert.equal(meshed(pod("a", "shop")), true);
    assert.equal(meshed(pod("a", "bank")), false, "namespace not opted in");
    assert.equal(meshed(pod("a", "bank", { annotations: { "trellis.dev/inject": "enabled" } })), true);
    assert.equal(meshed(pod("a", "shop", { annotations: { "trellis.dev/inject": "disabled" } })), false);
    assert.equal(meshed(pod("a", "shop", { hostNetwork: true })), false);
    assert.equal(meshed(pod("a", "shop", { containers: ["trellis-proxy"] })), false);
    // trellis-init comes first in every injected pod (capture): the injector refuses that name too.
    assert.equal(meshed(pod("a", "shop", { containers: ["app", "trellis-init"] })), false);
    assert.equal(meshed(pod("a", "kube-system")), false);
    assert.equal(meshed(pod("a", "nowhere")), false);
    assert.equal(
      meshed(pod("a", "shop"), injection({ namespaceSelector: { matchLabels: { team: "bank" } } })),
      false,
    );
    assert.equal(
      meshed(
        pod("a", "shop", { labels: { tier: "db" } }),
        injection({ podSelector: { matchLabels: { tier: "web" } } }),
      ),
      false,
    );
  });

  it("counts pods without a proxy and proxies out of skew, by owner; finished pods not at all", () => {
    const census = dataPlaneCensus({
      injected: [
        pod("web-abc-1", "shop", { owner: "web", version: "1.0.0" }),
        pod("old-abc-1", "shop", { owner: "old", version: "0.8.2" }),
      ],
      uninjected: [
        pod("web-abc-2", "shop", { owner: "web" }),
        pod("debug", "shop"),
        pod("done", "shop", { phase: "Succeeded" }),
        pod("plain", "bank"),
      ],
      namespace: (n) => namespaces[n],
      injection: injection(),
      controlPlaneVersion: "1.0.0",
    });
    assert.deepEqual(
      census.missing.map((g) => g.pod.metadata?.name),
      ["web-abc-2", "debug"],
    );
    assert.deepEqual(
      census.outOfSkew.map((g) => [g.pod.metadata?.name, g.version]),
      [["old-abc-1", "0.8.2"]],
    );
    const owners = gapsByOwner(census);
    assert.deepEqual(owners, [
      { key: "Deployment/shop/old", missing: 0, outOfSkew: 1 },
      { key: "Deployment/shop/web", missing: 1, outOfSkew: 0 },
      { key: "Pod/shop/debug", missing: 1, outOfSkew: 0 },
    ]);
    assert.equal(
      describeGaps(owners, { missing: 2, outOfSkew: 1 }, { max: 2 }),
      "2 pods without a proxy, 1 proxy outside the skew policy: Deployment shop/old (1), Deployment shop/web (1), and 1 more",
    );
  });
});
