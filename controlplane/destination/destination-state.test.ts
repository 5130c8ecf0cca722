// Table tests of the pure parts: which authorities name a Service, and what a Service's
// slices, pods and profile turn into on the wire.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import type { ServiceProfile } from "../../api/index.ts";
import { parseAuthority } from "./authority.ts";
import { destinationUpdate } from "./destination-state.ts";

describe("parseAuthority", () => {
  const cases: [string, ReturnType<typeof parseAuthority>][] = [
    ["web.shop.svc.cluster.local:8080", { namespace: "shop", name: "web", port: 8080 }],
    ["web.shop.svc:8080", { namespace: "shop", name: "web", port: 8080 }],
    ["web.shop:8080", { namespace: "shop", name: "web", port: 8080 }],
    ["Web.Shop.svc.cluster.local.:80", { namespace: "shop", name: "web", port: 80 }],
    ["web:8080", undefined],
    ["web.shop", undefined],
    ["web.shop:0", undefined],
    ["web.shop:70000", undefined],
    ["example.com.au:443", undefined],
    ["10.0.0.1:80", undefined],
  ];
  for (const [authority, expected] of cases) {
    it(authority, () => assert.deepEqual(parseAuthority(authority), expected));
  }
});

describe("destinationUpdate", () => {
  const service: V1Service = {
    metadata: { name: "web", namespace: "shop" },
    spec: { ports: [{ name: "http", port: 8080 }] },
  };
  const slice: V1EndpointSlice = {
    addressType: "IPv4",
    ports: [{ name: "http", port: 80 }],
    endpoints: [
      {
        addresses: ["10.1.0.2"],
        conditions: { ready: true },
        targetRef: { kind: "Pod", name: "meshed", namespace: "shop" },
      },
      {
        addresses: ["10.1.0.1"],
        conditions: { ready: true },
        targetRef: { kind: "Pod", name: "plain", namespace: "shop" },
      },
      {
        addresses: ["10.1.0.3"],
        conditions: { ready: false },
        targetRef: { kind: "Pod", name: "meshed", namespace: "shop" },
      },
    ],
  };
  const pods: Record<string, V1Pod> = {
    meshed: {
      metadata: { name: "meshed", namespace: "shop", labels: { "trellis.dev/proxy-version": "1.0.0" } },
      spec: { serviceAccountName: "web", containers: [] },
    },
    plain: { metadata: { name: "plain", namespace: "shop" }, spec: { containers: [] } },
  };
  const profile = (reason: string): ServiceProfile => ({
    apiVersion: "trellis.dev/v1alpha1",
    kind: "ServiceProfile",
    metadata: { name: "web.shop.svc.cluster.local", namespace: "shop" },
    spec: {
      routes: [{ name: "all", condition: { pathRegex: "/.*" }, isRetryable: false, timeout: "1h30m" }],
      retryBudget: { retryRatio: 0.1, minRetriesPerSecond: 5, ttl: "2s" },
    },
    status: {
      conditions: [
        {
          type: "Ready",
          status: reason === "Accepted" ? "True" : "False",
          reason,
          message: "",
          lastTransitionTime: "",
        },
      ],
    },
  });
  const update = (p: ServiceProfile | undefined, trustDomain = "example.org") =>
    destinationUpdate(
      { service, slices: [slice], pod: (_ns, name) => pods[name], profile: p, trustDomain },
      { namespace: "shop", name: "web", port: 8080 },
    );

  it("sends meshed pods to 4143 with their identity, others to the target port, never unready ones", () => {
    assert.deepEqual(update(undefined).endpoints, [
      { address: "10.1.0.1", port: 80 },
      { address: "10.1.0.2", port: 4143, identity: "spiffe://example.org/ns/shop/sa/web" },
    ]);
  });

  it("turns an accepted profile into routes with millisecond durations", () => {
    const u = update(profile("Accepted"));
    assert.deepEqual(u.routes, [
      { name: "all", condition: { pathRegex: "/.*" }, isRetryable: false, timeout: 5_400_000 },
    ]);
    assert.deepEqual(u.retryBudget, { retryRatio: 0.1, minRetriesPerSecond: 5, ttl: 2000 });
  });

  it("ignores a profile the operator reported as InvalidSpec", () => {
    const u = update(profile("InvalidSpec"));
    assert.deepEqual(u.routes, []);
    assert.equal(u.retryBudget, undefined);
  });
});
