// The checks as pure functions over facts: each verdict a user would act on, with the facts
// that lead to it, and the table in colour on a terminal (golden).
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import type { Certificate, Mesh } from "../../api/index.ts";
import { assertGolden } from "../../test/golden.ts";
import { COLOUR } from "../output.ts";
import type { CheckFacts } from "./check-facts.ts";
import { renderCheckReport } from "./check-render.ts";
import { runChecks } from "./checks.ts";
import { certificateCheck } from "./mesh-checks.ts";

const NOW = new Date("2026-12-01T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
const inDays = (d: number) => new Date(NOW.getTime() + d * 86_400_000).toISOString();

function cert(
  type: "TrustAnchor" | "Issuer" | "Serving",
  daysLeft: number,
  renewalInDays: number,
  ready = true,
): Certificate {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Certificate",
    metadata: { name: `c-${type.toLowerCase()}`, namespace: "trellis-system" },
    spec: { type, secretName: "s", duration: "720h" },
    status: {
      notAfter: inDays(daysLeft),
      renewalTime: inDays(renewalInDays),
      conditions: [
        {
          type: "Ready",
          status: ready ? "True" : "False",
          reason: ready ? "Issued" : "IssuerNotReady",
          message: "",
          lastTransitionTime: ago(60),
        },
      ],
    },
  };
}

function pod(ns: string, name: string, labels: Record<string, string>, extra: Partial<V1Pod> = {}): V1Pod {
  return {
    metadata: { namespace: ns, name, labels, ...extra.metadata },
    spec: { containers: [{ name: "app" }], ...extra.spec },
    status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }], ...extra.status },
  };
}

function mesh(over: Partial<NonNullable<Mesh["status"]>> = {}, spec: Record<string, unknown> = {}): Mesh {
  return {
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Mesh",
    metadata: { name: "default", generation: 3 },
    spec: { version: "1.4.0", ...spec } as Mesh["spec"],
    status: {
      observedGeneration: 3,
      version: "1.4.0",
      conditions: [
        { type: "Ready", status: "True", reason: "Available", message: "ok", lastTransitionTime: ago(100) },
      ],
      trustAnchor: { rotationPhase: "Stable", fingerprint: "aa", bundleFingerprints: ["aa"] },
      ...over,
    },
  };
}

function facts(over: Partial<CheckFacts> = {}): CheckFacts {
  const cp = (c: string) =>
    pod("trellis-system", `trellis-${c}-x`, {
      "trellis.dev/mesh": "default",
      "app.kubernetes.io/component": c,
      "app.kubernetes.io/version": "1.4.0",
    });
  return {
    now: NOW,
    cliVersion: "1.4.0",
    serverVersion: "v1.36.3",
    crds: ["meshes", "serviceprofiles", "certificates"].map((n) => ({
      name: `${n}.trellis.dev`,
      installed: true,
      current: true,
    })),
    operator: {
      deployments: [
        { namespace: "trellis-operator", name: "trellis-operator", version: "1.4.0", ready: 1, replicas: 1 },
      ],
    },
    meshes: [mesh()],
    controlPlanePods: [cp("destination"), cp("identity"), cp("injector")],
    certificates: [cert("TrustAnchor", 300, 200), cert("Issuer", 25, 15)],
    meshedNamespaces: [{ name: "shop", annotations: { "trellis.dev/inject": "enabled" } }],
    bundles: new Map([["shop", ["aa"]]]),
    pods: [
      pod(
        "shop",
        "web-1",
        { "trellis.dev/proxy-version": "1.4.0" },
        { metadata: { annotations: { "trellis.dev/trust-bundle-fingerprints": "aa" } } },
      ),
    ],
    ...over,
  };
}

describe("check verdicts", () => {
  it("a healthy cluster passes every check", () => {
    const r = runChecks(facts(), { pre: false, proxies: true });
    assert.deepEqual(
      r.summary,
      { ok: r.checks.length, warnings: 0, failures: 0 },
      JSON.stringify(r.checks, null, 1),
    );
  });

  it("renders ✓ ‼ × in colour on a terminal", () => {
    const f = facts({
      serverVersion: "v1.37.0",
      certificates: [cert("Issuer", 1, 0.5), cert("Serving", 80, 40, false)],
      pods: [
        pod("shop", "web-1", { "trellis.dev/proxy-version": "1.6.0" }),
        pod(
          "shop",
          "old-1",
          {},
          {
            metadata: {
              ownerReferences: [
                { apiVersion: "apps/v1", kind: "StatefulSet", name: "old", uid: "u", controller: true },
              ],
            },
          },
        ),
        pod("shop", "host", {}, { spec: { hostNetwork: true, containers: [] } }),
        pod("shop", "optout", {}, { metadata: { annotations: { "trellis.dev/inject": "disabled" } } }),
      ],
    });
    const report = runChecks(f, { pre: false, proxies: true });
    assert.equal(report.summary.failures, 3);
    assertGolden(
      join(import.meta.dirname, "testdata/check-colour.golden.txt"),
      renderCheckReport(report, COLOUR),
    );
  });

  it("certificates: expired and not-Ready fail; under a week, overdue renewal and no renewal warn", () => {
    const status = (c: Certificate) => certificateCheck(c, NOW, undefined).status;
    assert.equal(status(cert("Serving", -1, -20)), "fail");
    assert.equal(status(cert("Serving", 50, 20, false)), "fail");
    assert.equal(status(cert("Serving", 3, 1)), "warn");
    assert.equal(status(cert("Serving", 30, -2)), "warn");
    assert.equal(status(cert("Serving", 30, 10)), "ok");
    assert.match(
      certificateCheck(cert("TrustAnchor", 300, 200), NOW, { automatic: false }).message,
      /automatic rotation off/,
    );
  });

  it("a rollout past its step deadline, or analysing long past its interval, fails; a paused one warns", () => {
    const rolling = (state: string, since: number) =>
      runChecks(
        facts({
          meshes: [
            mesh(
              {
                rollout: {
                  fromVersion: "1.4.0",
                  toVersion: "1.4.1",
                  step: 1,
                  steps: 3,
                  state,
                  stepStartedAt: ago(since),
                  analysisSince: ago(since),
                },
              },
              { upgrade: { stepDeadline: "5m", analysis: { interval: "30s" } } },
            ),
          ],
        }),
        { pre: false, proxies: false },
      ).checks.find((c) => c.id === "rollout-progress");
    assert.equal(rolling("Restarting", 400)?.status, "fail");
    assert.match(
      rolling("Restarting", 400)?.message ?? "",
      /wave 1 restarting for 7m, past its stepDeadline 5m/,
    );
    assert.equal(rolling("Restarting", 60)?.status, "ok");
    assert.equal(rolling("Analysing", 200)?.status, "fail");
    assert.equal(rolling("Paused", 9999)?.status, "warn");
  });

  it("--proxies counts what the operator's census counts: webhook selectors, pod opt-in, the injector's refusals (issue 21)", () => {
    const owned = (rs: string) => ({
      metadata: {
        ownerReferences: [
          { apiVersion: "apps/v1", kind: "ReplicaSet", name: rs, uid: "u", controller: true },
        ],
      },
    });
    const f = facts({
      meshes: [mesh({}, { injection: { namespaceSelector: { matchLabels: { team: "a" } } } })],
      meshedNamespaces: [
        { name: "shop", annotations: { "trellis.dev/inject": "enabled" } },
        { name: "outside", annotations: { "trellis.dev/inject": "enabled" } },
      ],
      namespaces: [
        { name: "shop", labels: { team: "a" }, annotations: { "trellis.dev/inject": "enabled" } },
        { name: "outside", labels: { team: "b" }, annotations: { "trellis.dev/inject": "enabled" } },
        { name: "plain", labels: { team: "a" }, annotations: {} },
      ],
      pods: [
        pod("shop", "web-1", { "trellis.dev/proxy-version": "1.4.0" }),
        pod("shop", "web-abc12-x", { "pod-template-hash": "abc12" }, owned("web-abc12")),
        pod("shop", "web-abc12-y", { "pod-template-hash": "abc12" }, owned("web-abc12")),
        // Opted in by its own annotation in a namespace that is not: the injector meshes it.
        pod("plain", "tool", {}, { metadata: { annotations: { "trellis.dev/inject": "enabled" } } }),
        // Annotated, but outside spec.injection.namespaceSelector: the webhook is never called.
        pod("outside", "skipped", {}),
        pod("shop", "host", {}, { spec: { hostNetwork: true, containers: [] } }),
        pod("shop", "optout", {}, { metadata: { annotations: { "trellis.dev/inject": "disabled" } } }),
        pod("shop", "done", {}, { status: { phase: "Succeeded" } }),
      ],
    });
    const missing = runChecks(f, { pre: false, proxies: true }).checks.find(
      (c) => c.id === "pods-without-proxy",
    );
    assert.equal(missing?.status, "fail");
    assert.equal(missing?.message, "3 pods that should carry the proxy run without one");
    assert.deepEqual(missing?.details, [
      "Deployment shop/web: 2 pods (web-abc12-x, web-abc12-y)",
      "bare pod plain/tool: 1 pod (tool)",
    ]);
    assert.match(missing?.hint ?? "", /operator restarts their workloads in canaried steps/);
    assert.match(missing?.hint ?? "", /bare pods and Job pods are never restarted by the operator/);
  });

  it("data-plane hints follow spec.injection.repair and the repair's state; the Mesh group shows the operator's own count (issue 21)", () => {
    const gap = pod(
      "shop",
      "old-1",
      {},
      {
        metadata: {
          ownerReferences: [
            { apiVersion: "apps/v1", kind: "StatefulSet", name: "old", uid: "u", controller: true },
          ],
        },
      },
    );
    const check = (m: Mesh, id: string, proxies = true) =>
      runChecks(facts({ meshes: [m], pods: [gap] }), { pre: false, proxies }).checks.find((c) => c.id === id);
    assert.match(
      check(mesh({}, { injection: { repair: "Report" } }), "pods-without-proxy")?.hint ?? "",
      /spec\.injection\.repair is Report: restart their workloads/,
    );
    const repairing = mesh({
      repair: {
        fromVersion: "1.4.0",
        toVersion: "1.4.0",
        step: 0,
        steps: 2,
        state: "Analysing",
        analysisSince: ago(10),
        updatedWorkloads: 1,
        totalWorkloads: 3,
      },
      conditions: [
        { type: "Ready", status: "True", reason: "Available", message: "ok", lastTransitionTime: ago(100) },
        {
          type: "DataPlaneIncomplete",
          status: "True",
          reason: "ProxiesMissing",
          message: "1 pod without a proxy: StatefulSet shop/old (1); a repair restarts their workloads",
          lastTransitionTime: ago(50),
        },
      ],
    });
    assert.match(
      check(repairing, "pods-without-proxy")?.hint ?? "",
      /the operator is repairing them: canary \(step 1 of 2\) analysing, 1\/3 workloads restarted/,
    );
    assert.equal(check(repairing, "repair-progress", false)?.status, "ok");
    assert.equal(check(repairing, "data-plane", false)?.status, "warn");
    assert.match(check(repairing, "data-plane", false)?.message ?? "", /StatefulSet shop\/old \(1\)/);
    const halted = mesh({
      repair: {
        fromVersion: "1.4.0",
        toVersion: "1.4.0",
        step: 1,
        steps: 2,
        state: "Halted",
        message: "wave 1 failed",
      },
    });
    assert.equal(check(halted, "repair-progress", false)?.status, "fail");
    assert.match(
      check(halted, "pods-without-proxy")?.hint ?? "",
      /the operator's repair halted: wave 1 failed/,
    );
    // The fleet's own version is outside the policy: a restart would bring it back.
    const skewed = runChecks(
      facts({
        meshes: [
          mesh({
            version: "1.6.0",
            controlPlane: { version: "1.6.0" },
            proxies: { total: 1, updated: 1, summary: "1/1", version: "1.4.0" },
          }),
        ],
      }),
      { pre: false, proxies: true },
    ).checks.find((c) => c.id === "proxy-skew");
    assert.equal(skewed?.status, "fail");
    assert.match(skewed?.hint ?? "", /the fleet's own proxy version is outside it too/);
    assert.deepEqual(skewed?.details, [
      "bare pod shop/web-1: 1 proxy (proxy 1.4.0 is 2 minor releases older than control plane 1.6.0 (at most 1))",
    ]);
  });

  it("no operator: no Deployment and a stale Lease fail; a fresh Lease passes", () => {
    const op = (renewedAgo: number) =>
      runChecks(
        facts({
          operator: {
            deployments: [],
            lease: { namespace: "default", holder: "h", renewTime: ago(renewedAgo), durationSeconds: 15 },
          },
        }),
        { pre: false, proxies: false },
      ).checks.find((c) => c.id === "operator")?.status;
    assert.equal(op(5), "ok");
    assert.equal(op(120), "fail");
    const unseen = (meshes: Mesh[]) =>
      runChecks(facts({ operator: { deployments: [] }, meshes }), { pre: false, proxies: false }).checks.find(
        (c) => c.id === "operator",
      );
    assert.equal(
      unseen([mesh({ operatorVersion: "1.4.0" })])?.status,
      "warn",
      "outside the cluster, status current",
    );
    assert.equal(unseen([mesh({ operatorVersion: "1.4.0", observedGeneration: 2 })])?.status, "fail");
  });

  it("--pre: too old a Kubernetes and missing access fail; CRDs present warn", () => {
    const r = runChecks(
      facts({
        serverVersion: "v1.29.9",
        access: [
          {
            verb: "create",
            resource: "customresourcedefinitions",
            group: "apiextensions.k8s.io",
            allowed: false,
          },
          { verb: "create", resource: "namespaces", group: "", allowed: true },
        ],
      }),
      { pre: true, proxies: false },
    );
    assert.deepEqual(
      r.checks.map((c) => [c.id, c.status]),
      [
        ["kubernetes-version", "fail"],
        ["install-access", "fail"],
        ["crds", "warn"],
      ],
    );
  });
});
