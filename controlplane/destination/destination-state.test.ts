// Table tests of the pure parts: which authorities name a Service, and what a Service's
// slices, pods and profile turn into on the wire.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import type { ServiceProfile } from "../../api/index.ts";
import { AddressIndex } from "./address-index.ts";
import { parseAddressAuthority, parseAuthority } from "./authority.ts";
import {
  destinationUpdate,
  OPAQUE_PORTS_ANNOTATION,
  podDeclaresOpaque,
  podUpdate,
} from "./destination-state.ts";

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

describe("parseAddressAuthority", () => {
  const cases: [string, ReturnType<typeof parseAddressAuthority>][] = [
    ["10.0.0.1:80", { ip: "10.0.0.1", port: 80 }],
    ["[FD00::1]:8080", { ip: "fd00::1", port: 8080 }],
    ["10.0.0.256:80", undefined],
    ["10.0.0.1:0", undefined],
    ["web.shop:80", undefined],
    ["[web]:80", undefined],
    ["10.0.0.1", undefined],
  ];
  for (const [authority, expected] of cases) {
    it(authority, () => assert.deepEqual(parseAddressAuthority(authority), expected));
  }
});

describe("AddressIndex", () => {
  it("lets the newest owner of a reused address keep it when the old one goes", () => {
    const index = new AddressIndex();
    index.set("shop/old", ["10.1.0.9"]);
    index.set("shop/new", ["10.1.0.9", "FD00::9"]);
    index.delete("shop/old");
    assert.equal(index.owner("10.1.0.9"), "shop/new");
    assert.equal(index.owner("fd00::9"), "shop/new");
    index.set("shop/new", []);
    assert.equal(index.owner("10.1.0.9"), undefined);
  });
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
      { address: "10.1.0.2", port: 4143, identity: "spiffe://example.org/ns/shop/sa/web", targetPort: 80 },
    ]);
    assert.equal(update(undefined).opaque, undefined);
  });

  it("leaves out an endpoint whose pod it does not know yet, rather than call it unmeshed", () => {
    const known = destinationUpdate(
      {
        service,
        slices: [slice],
        pod: (_ns, name) => (name === "plain" ? pods[name] : undefined),
        profile: undefined,
        trustDomain: "example.org",
      },
      { namespace: "shop", name: "web", port: 8080 },
    );
    assert.deepEqual(known.endpoints, [{ address: "10.1.0.1", port: 80 }]);
  });

  it("marks the port opaque for a non-HTTP appProtocol or a pod's opaque-ports annotation", () => {
    const withProtocol = (appProtocol: string) =>
      destinationUpdate(
        {
          service: { ...service, spec: { ports: [{ name: "http", port: 8080, appProtocol }] } },
          slices: [slice],
          pod: (_ns, name) => pods[name],
          profile: undefined,
          trustDomain: "example.org",
        },
        { namespace: "shop", name: "web", port: 8080 },
      ).opaque;
    assert.equal(withProtocol("mysql"), true);
    assert.equal(withProtocol("kubernetes.io/h2c"), undefined);
    assert.equal(withProtocol("HTTP"), undefined);
    const annotated = {
      ...pods.plain!,
      metadata: { ...pods.plain!.metadata, annotations: { [OPAQUE_PORTS_ANNOTATION]: "25,70-90" } },
    };
    assert.equal(podDeclaresOpaque(annotated, 80), true);
    assert.equal(podDeclaresOpaque(annotated, 91), false);
    assert.equal(
      destinationUpdate(
        {
          service,
          slices: [slice],
          pod: (_ns, name) => (name === "plain" ? annotated : pods[name]),
          profile: undefined,
          trustDomain: "t",
        },
        { namespace: "shop", name: "web", port: 8080 },
      ).opaque,
      true,
    );
  });

  it("answers a pod IP:port with that pod alone, behind its proxy when meshed", () => {
    assert.deepEqual(podUpdate(pods.meshed!, "10.1.0.2", 9090, "example.org"), {
      endpoints: [
        {
          address: "10.1.0.2",
          port: 4143,
          identity: "spiffe://example.org/ns/shop/sa/web",
          targetPort: 9090,
        },
      ],
      routes: [],
    });
    assert.deepEqual(podUpdate(pods.plain!, "10.1.0.1", 9090, "t").endpoints, [
      { address: "10.1.0.1", port: 9090 },
    ]);
    // The meshed pod's admin port is reached as it is, never through the peer proxy.
    assert.deepEqual(podUpdate(pods.meshed!, "10.1.0.2", 4191, "t").endpoints, [
      { address: "10.1.0.2", port: 4191 },
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
