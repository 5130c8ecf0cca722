// Sidecar injection through the real API server: the operator makes the Mesh (its webhook
// configuration and the injector's serving Certificate), the injector runs as a real process on
// loopback, and a Deployment created in an opted-in namespace gets the proxy in its pods. A pod
// the injector cannot mesh (an app container named like the proxy, hostNetwork) is still
// created, unmeshed, and its creator sees why.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { repoRoot } from "../cluster/binaries.ts";
import { freePort, LocalCluster } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { installCrds, type OperatorProcess, startInjector, startOperator } from "../operator-process.ts";

describe("sidecar injection through the API server", { timeout: 180_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  const group = new ProcessGroup();

  /** kubectl's stdout and stderr (where it prints admission warnings). */
  const kubectlOutput = (args: string[], input: string) => {
    const r = spawnSync(cluster.binaries.kubectl, args, {
      env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
      input,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    return `${r.stdout}${r.stderr}`;
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 2 });
    await installCrds(cluster);
    const port = await freePort();
    operator = await startOperator(cluster, [
      "--no-leader-elect",
      `--injector-url=https://127.0.0.1:${port}/inject`,
    ]);
    cluster.kubectl(["apply", "-f", join(repoRoot, "docs/examples/mesh.yaml")]);
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
    await startInjector(cluster, group, port);
  });
  after(async () => {
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("adds the proxy as a native sidecar to pods of an opted-in namespace", async () => {
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["annotate", "namespace", "shop", "trellis.dev/inject=enabled"]);
    await new Promise((r) => setTimeout(r, 1500)); // the injector's namespace cache catches up
    cluster.kubectl([
      "-n",
      "shop",
      "create",
      "deployment",
      "web",
      "--image=localhost/web:1",
      "--replicas=2",
      "--port=8080",
    ]);
    cluster.kubectl(["-n", "shop", "rollout", "status", "deployment/web", "--timeout=60s"]);
    const pods = JSON.parse(
      cluster.kubectl(["-n", "shop", "get", "pods", "-l", "app=web", "-o", "json"]),
    ) as { items: V1Pod[] };
    assert.equal(pods.items.length, 2);
    for (const pod of pods.items) {
      const sidecar = pod.spec?.initContainers?.[0];
      assert.equal(sidecar?.name, "trellis-proxy");
      assert.equal(sidecar?.restartPolicy, "Always");
      assert.equal(sidecar?.image, "localhost/trellis/proxy:1.0.0");
      assert.equal(pod.metadata?.labels?.["trellis.dev/proxy-version"], "1.0.0");
      assert.ok(
        pod.spec?.volumes?.some(
          (v) => v.projected?.sources?.[0]?.serviceAccountToken?.audience === "identity.trellis.dev",
        ),
      );
      assert.equal(pod.status?.phase, "Running");
    }
  });

  it("leaves pods alone in namespaces that did not opt in, and pods that opted out", async () => {
    cluster.kubectl(["-n", "default", "run", "plain", "--image=localhost/plain:1"]);
    cluster.kubectl([
      "-n",
      "shop",
      "run",
      "legacy",
      "--image=localhost/legacy:1",
      "--annotations=trellis.dev/inject=disabled",
    ]);
    for (const [ns, name] of [
      ["default", "plain"],
      ["shop", "legacy"],
    ] as const) {
      const init = cluster.kubectl(["-n", ns, "get", "pod", name, "-o", "jsonpath={.spec.initContainers}"]);
      assert.equal(init, "", `${ns}/${name} must not be injected`);
    }
  });

  it("meshes a pod created in the same breath as its annotated namespace (issue 21)", () => {
    // One apply: the namespace and the pod reach the API server milliseconds apart, long before
    // the injector's namespace cache can have seen the namespace.
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Namespace
metadata: { name: fresh, annotations: { trellis.dev/inject: enabled } }
---
apiVersion: v1
kind: Pod
metadata: { name: first, namespace: fresh }
spec: { containers: [{ name: app, image: localhost/app:1 }] }
`,
    );
    const init = cluster.kubectl([
      "-n",
      "fresh",
      "get",
      "pod",
      "first",
      "-o",
      "jsonpath={.spec.initContainers[0].name}",
    ]);
    assert.equal(init, "trellis-proxy");
  });

  it("creates a pod whose app container is named trellis-proxy, unmeshed, with a warning (issue 17, 9)", () => {
    const pod = (name: string, spec: string) =>
      `apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: shop }
spec: ${spec}
`;
    const out = kubectlOutput(
      ["apply", "-f", "-"],
      pod("clash", "{ containers: [{ name: trellis-proxy, image: localhost/mine:1 }] }"),
    );
    assert.match(
      out,
      /Warning: trellis: pod not meshed: the pod already has a container named trellis-proxy/,
    );
    const init = cluster.kubectl([
      "-n",
      "shop",
      "get",
      "pod",
      "clash",
      "-o",
      "jsonpath={.spec.initContainers}",
    ]);
    assert.equal(init, "");
    const host = kubectlOutput(
      ["apply", "-f", "-"],
      pod("host", "{ hostNetwork: true, containers: [{ name: app, image: localhost/agent:1 }] }"),
    );
    assert.match(host, /Warning: trellis: pod not meshed: hostNetwork pods are never meshed/);
  });
});
