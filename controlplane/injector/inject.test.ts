// Golden files for injection: each workload kind's pod (from its template) before → after,
// plus idempotence (injecting an injected pod changes nothing) and the opt-in rules.
// Regenerate with UPDATE_GOLDEN=1.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { V1Pod } from "@kubernetes/client-node";
import { parse, stringify } from "yaml";
import { podCaptureOf } from "../../capture/annotations.ts";
import { parseAppProbes } from "../../capture/app-probes.ts";
import { parseCaptureAnnotation } from "../../cni/capture-annotation.ts";
import { assertGolden } from "../../test/golden.ts";
import { decideInjection, type InjectionConfig } from "./inject.ts";
import { applyJsonPatch } from "./json-patch.ts";

const testdata = fileURLToPath(new URL("./testdata", import.meta.url));
const config: InjectionConfig = {
  proxyImage: "localhost/trellis/proxy",
  initImage: "localhost/trellis/init:1.0.0",
  captureMode: "InitContainer",
  cniImage: "localhost/trellis/cni:1.0.0",
  defaultProxyVersion: "1.0.0",
  logLevel: "info",
  resources: { requests: { cpu: "10m", memory: "20Mi" }, limits: { memory: "128Mi" } },
  trustDomain: "cluster.local",
};
const shopNamespace = { "trellis.dev/inject": "enabled" };

interface Workload {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: { template?: { metadata?: V1Pod["metadata"]; spec: V1Pod["spec"] } } & V1Pod["spec"];
}

/** The pod a workload's controller would create (what the webhook sees). */
function podOf(w: Workload): V1Pod {
  if (w.kind === "Pod") return w as V1Pod;
  const t = w.spec.template;
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { ...t?.metadata, generateName: `${w.metadata.name}-`, namespace: w.metadata.namespace },
    spec: t?.spec,
  };
}

const load = (file: string) => podOf(parse(readFileSync(join(testdata, file), "utf8")) as Workload);

describe("sidecar injection", () => {
  it("CNI mode: the validator instead of trellis-init, the plugin's annotation, and no capability anywhere", () => {
    const pod = load("deployment.yaml");
    const restricted = { "pod-security.kubernetes.io/enforce": "restricted" };
    const decision = decideInjection(pod, shopNamespace, { ...config, captureMode: "CNI" }, restricted);
    assert.ok(decision.inject);
    assert.deepEqual(decision.notices, [], "restricted forbids nothing of a CNI-mode pod");
    const out = applyJsonPatch(pod, decision.patch);
    assert.deepEqual(
      out.spec?.initContainers?.map((c) => c.name),
      ["trellis-validate", "trellis-proxy"],
    );
    assert.ok(!out.spec?.volumes?.some((v) => v.name.startsWith("trellis-init")));
    assert.equal(out.metadata?.labels?.["trellis.dev/capture-mode"], "CNI");
    const annotation = parseCaptureAnnotation(out.metadata?.annotations?.["trellis.dev/capture"] ?? "");
    assert.ok(annotation.ok);
    assert.deepEqual(annotation.settings, podCaptureOf(undefined, shopNamespace).settings);
    for (const c of out.spec?.initContainers ?? []) {
      const sc = c.securityContext;
      assert.equal(sc?.allowPrivilegeEscalation, false, c.name);
      assert.deepEqual(sc?.capabilities, { drop: ["ALL"] }, c.name);
      assert.equal(sc?.seccompProfile?.type, "RuntimeDefault", c.name);
      assert.equal(sc?.readOnlyRootFilesystem, true, c.name);
      assert.ok(sc?.runAsNonRoot && (sc.runAsUser ?? 0) > 0, c.name);
    }
    assert.equal(out.spec?.initContainers?.[0]?.securityContext?.runAsUser === 2102, false);
  });

  it("a workload's capture-mode annotation wins over the mesh's; a bad one is reported and ignored", () => {
    const pod = load("deployment.yaml");
    const asked = (value: string) => ({
      ...pod,
      metadata: { ...pod.metadata, annotations: { "trellis.dev/capture-mode": value } },
    });
    const cni = decideInjection(asked("CNI"), shopNamespace, config);
    assert.ok(cni.inject);
    assert.equal(applyJsonPatch(asked("CNI"), cni.patch).spec?.initContainers?.[0]?.name, "trellis-validate");
    const bad = decideInjection(asked("Sidecar"), shopNamespace, config);
    assert.ok(bad.inject);
    assert.equal(applyJsonPatch(asked("Sidecar"), bad.patch).spec?.initContainers?.[0]?.name, "trellis-init");
    assert.deepEqual(
      bad.notices.map((n) => n.reason),
      ["CaptureModeRefused"],
    );
  });

  for (const file of readdirSync(testdata).filter((f) => f.endsWith(".yaml") && !f.includes(".golden"))) {
    it(`${file}: golden and idempotent`, () => {
      const pod = load(file);
      const decision = decideInjection(pod, shopNamespace, config);
      const out = decision.inject ? applyJsonPatch(pod, decision.patch) : pod;
      const header = decision.inject
        ? `# injected proxy ${decision.version}\n`
        : `# not injected: ${decision.reason}\n`;
      assertGolden(
        join(testdata, file.replace(".yaml", ".golden.yaml")),
        header + stringify(out, { lineWidth: 0 }),
      );
      const again = decideInjection(out, shopNamespace, config);
      assert.equal(again.inject, false, "re-injecting must change nothing");
    });
  }

  it("injects trellis-init, then the native sidecar, before the app's own init containers", () => {
    const pod = load("statefulset.yaml");
    const decision = decideInjection(pod, shopNamespace, config);
    assert.ok(decision.inject);
    const out = applyJsonPatch(pod, decision.patch);
    assert.deepEqual(
      out.spec?.initContainers?.map((c) => [c.name, c.restartPolicy]),
      [
        ["trellis-init", undefined],
        ["trellis-proxy", "Always"],
        ["migrate", undefined],
      ],
    );
    assert.equal(decision.version, "1.1.0", "the template's wave version wins over the default");
    assert.equal(out.metadata?.labels?.["trellis.dev/proxy-version"], "1.1.0");
  });

  it("follows the opt-in rules", () => {
    const pod = load("deployment.yaml");
    assert.equal(decideInjection(pod, {}, config).inject, false, "namespace not opted in");
    assert.equal(decideInjection(load("daemonset.yaml"), {}, config).inject, true, "pod opted in");
    const optOut = decideInjection(load("opted-out.yaml"), shopNamespace, config);
    assert.deepEqual(optOut, {
      inject: false,
      reason: "pod opted out (trellis.dev/inject: disabled)",
      notices: [],
    });
    const host = { ...pod, spec: { ...pod.spec, containers: pod.spec?.containers ?? [], hostNetwork: true } };
    const hostDecision = decideInjection(host, shopNamespace, config);
    assert.equal(hostDecision.inject, false);
    assert.deepEqual(
      hostDecision.notices.map((n) => n.reason),
      ["HostNetworkNotMeshed"],
      "a hostNetwork pod that asked for the mesh is told why it has none",
    );
    assert.deepEqual(decideInjection(host, {}, config).notices, [], "one that did not ask is not");
  });

  it("refuses bad capture annotations as a whole: defaults everywhere, and a notice naming the problem", () => {
    const pod = load("annotated.yaml");
    pod.metadata = { ...pod.metadata, annotations: { ...pod.metadata?.annotations } };
    (pod.metadata.annotations as Record<string, string>)["config.trellis.dev/skip-inbound-ports"] =
      "8080,70000";
    const decision = decideInjection(pod, shopNamespace, config);
    assert.ok(decision.inject);
    const out = applyJsonPatch(pod, decision.patch);
    const init = out.spec?.initContainers?.[0];
    assert.deepEqual(init?.args, [
      "--inbound-port=4143",
      "--outbound-port=4140",
      "--proxy-uid=2102",
      "--skip-inbound-ports=4140,4143,4191",
    ]);
    const env = out.spec?.initContainers?.[1]?.env?.map((e) => e.name) ?? [];
    assert.ok(!env.includes("TRELLIS_PROXY_OPAQUE_PORTS"), "the opaque-ports annotation was dropped too");
    assert.deepEqual(
      decision.notices.map((n) => n.reason),
      ["CaptureAnnotationsRefused"],
    );
    assert.match(
      decision.notices[0]?.message ?? "",
      /config.trellis.dev\/skip-inbound-ports on the pod: "70000" is not a port .*meshed with the defaults/,
    );
    assert.ok(
      (decision.notices[0]?.message.length ?? 0) <= 256,
      "admission warnings past 256 characters are cut",
    );
  });

  it("warns about containers that run as the proxy's UID (never captured), and still injects", () => {
    const pod = load("deployment.yaml");
    const app = pod.spec?.containers[0]?.name;
    const asProxy = {
      ...pod,
      spec: { ...pod.spec, containers: pod.spec?.containers ?? [], securityContext: { runAsUser: 2102 } },
    };
    const decision = decideInjection(asProxy, shopNamespace, config);
    assert.ok(decision.inject);
    assert.deepEqual(
      decision.notices.map((n) => n.reason),
      ["ProxyUidNotCaptured"],
    );
    assert.match(
      decision.notices[0]?.message ?? "",
      new RegExp(`^trellis: ${app} runs as the proxy's UID 2102`),
    );
    assert.ok(
      (decision.notices[0]?.message.length ?? 0) <= 256,
      "admission warnings past 256 characters are cut",
    );
    const mine = {
      ...asProxy,
      spec: {
        ...asProxy.spec,
        containers: asProxy.spec.containers.map((c) => ({ ...c, securityContext: { runAsUser: 1000 } })),
        initContainers: [{ name: "wait-for-db", image: "busybox", securityContext: { runAsUser: 2102 } }],
      },
    };
    assert.deepEqual(
      decideInjection(mine, shopNamespace, config).notices,
      [],
      "a container's own user wins over the pod's, and an init container may run as the proxy (docs/capture.md)",
    );
  });

  it("warns when the namespace enforces a Pod Security level that forbids trellis-init, and still injects", () => {
    for (const level of ["baseline", "restricted"]) {
      const decision = decideInjection(load("deployment.yaml"), shopNamespace, config, {
        "pod-security.kubernetes.io/enforce": level,
      });
      assert.ok(decision.inject);
      assert.deepEqual(
        decision.notices.map((n) => n.reason),
        ["PodSecurityForbidsCapture"],
      );
      assert.match(decision.notices[0]?.message ?? "", new RegExp(`enforces Pod Security "${level}"`));
    }
    const privileged = decideInjection(load("deployment.yaml"), shopNamespace, config, {
      "pod-security.kubernetes.io/enforce": "privileged",
      "pod-security.kubernetes.io/warn": "restricted",
    });
    assert.deepEqual(privileged.notices, []);
  });

  it("hands the proxy only probes it accepts: a relative path made absolute, a port out of range left to the API server", () => {
    const pod: V1Pod = {
      metadata: { name: "p", namespace: "shop" },
      spec: {
        containers: [
          {
            name: "app",
            image: "app:1",
            readinessProbe: { httpGet: { path: "healthz?full=1", port: 8080 as never } },
            livenessProbe: { tcpSocket: { port: 70000 as never } },
          },
        ],
      },
    };
    const decision = decideInjection(pod, shopNamespace, config);
    assert.ok(decision.inject);
    const out = applyJsonPatch(pod, decision.patch);
    const proxy = out.spec?.initContainers?.find((c) => c.name === "trellis-proxy");
    const probes = parseAppProbes(
      proxy?.env?.find((e) => e.name === "TRELLIS_PROXY_APP_PROBES")?.value ?? "",
    );
    assert.deepEqual(probes["/app-probe/app/readiness"], {
      httpGet: { port: 8080, path: "/healthz?full=1", scheme: "HTTP" },
      timeoutSeconds: 1,
    });
    assert.deepEqual(
      out.spec?.containers[0]?.livenessProbe,
      { tcpSocket: { port: 70000 } },
      "left as it was, for the API server to refuse",
    );
  });

  it("rewrites captured probes to the proxy's admin port and hands it the originals", () => {
    const pod = load("probes.yaml");
    const decision = decideInjection(pod, shopNamespace, config);
    assert.ok(decision.inject);
    const out = applyJsonPatch(pod, decision.patch);
    const api = out.spec?.containers?.[0];
    assert.equal(api?.readinessProbe?.httpGet?.path, "/app-probe/api/readiness");
    assert.equal(api?.readinessProbe?.httpGet?.port, 4191);
    assert.equal(api?.readinessProbe?.grpc, undefined);
    assert.equal(api?.readinessProbe?.timeoutSeconds, 3, "the kubelet keeps the probe's timing");
    assert.equal(api?.livenessProbe?.httpGet?.port, 9100, "a skip-inbound port is not captured: left alone");
    const worker = out.spec?.containers?.[1];
    assert.ok(worker?.readinessProbe?.exec, "exec probes are left alone");
    assert.equal(worker?.livenessProbe?.httpGet?.host, "192.0.2.1", "probes of another host are left alone");
    const proxy = out.spec?.initContainers?.find((c) => c.name === "trellis-proxy");
    const probes = JSON.parse(proxy?.env?.find((e) => e.name === "TRELLIS_PROXY_APP_PROBES")?.value ?? "{}");
    assert.deepEqual(Object.keys(probes).sort(), [
      "/app-probe/api/readiness",
      "/app-probe/api/startup",
      "/app-probe/log-shipper/liveness",
    ]);
    assert.deepEqual(probes["/app-probe/log-shipper/liveness"], {
      tcpSocket: { port: 2020 },
      timeoutSeconds: 1,
    });
  });
});
