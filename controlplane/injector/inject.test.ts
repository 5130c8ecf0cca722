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
import { assertGolden } from "../../test/golden.ts";
import { decideInjection, type InjectionConfig } from "./inject.ts";
import { applyJsonPatch } from "./json-patch.ts";

const testdata = fileURLToPath(new URL("./testdata", import.meta.url));
const config: InjectionConfig = {
  proxyImage: "localhost/trellis/proxy",
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

  it("injects a native sidecar first, before the app's own init containers", () => {
    const pod = load("statefulset.yaml");
    const decision = decideInjection(pod, shopNamespace, config);
    assert.ok(decision.inject);
    const out = applyJsonPatch(pod, decision.patch);
    assert.deepEqual(
      out.spec?.initContainers?.map((c) => [c.name, c.restartPolicy]),
      [
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
    assert.deepEqual(optOut, { inject: false, reason: "pod opted out (trellis.dev/inject: disabled)" });
    const host = { ...pod, spec: { ...pod.spec, containers: pod.spec?.containers ?? [], hostNetwork: true } };
    assert.equal(decideInjection(host, shopNamespace, config).inject, false);
  });
});
