// Sidecar injection through the real API server: the operator makes the Mesh (its webhook
// configuration and the injector's serving Certificate), the injector runs as a real process on
// loopback, and a Deployment created in an opted-in namespace gets trellis-init and the proxy in
// its pods. A pod the injector cannot mesh (an app container named like the proxy, hostNetwork)
// is still created, unmeshed, and its creator sees why. Bad input as a user meets it through
// kubectl: refused capture annotations come back as a warning and an Event, and a namespace
// enforcing Pod Security "baseline" gets a warning from the injector and the API server's
// refusal naming trellis-init.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { V1Pod } from "@kubernetes/client-node";
import { repoRoot } from "../cluster/binaries.ts";
import { freePort, LocalCluster, waitFor } from "../cluster/local-cluster.ts";
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
      const init = pod.spec?.initContainers?.[0];
      assert.equal(init?.name, "trellis-init");
      assert.equal(init?.image, "localhost/trellis/init:1.0.0");
      assert.deepEqual(init?.securityContext?.capabilities?.add, ["NET_ADMIN", "NET_RAW"]);
      const sidecar = pod.spec?.initContainers?.[1];
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
      "jsonpath={.spec.initContainers[*].name}",
    ]);
    assert.ok(init.split(" ").includes("trellis-proxy"), init);
  });

  /** kubectl with its stderr, where it prints admission warnings and refusals. */
  const kubectl = (args: string[], input?: string) => {
    const r = spawnSync(cluster.binaries.kubectl, args, {
      env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath },
      input,
      encoding: "utf8",
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const eventReasons = (ns: string, name: string) =>
    cluster.kubectl([
      "-n",
      ns,
      "get",
      "events",
      "--field-selector",
      `involvedObject.name=${name}`,
      "-o",
      "jsonpath={.items[*].reason}",
    ]);

  /** The injector records its Events just after answering: wait for them. */
  const hasEvent = (ns: string, name: string, reason: string) =>
    waitFor(async () => eventReasons(ns, name).includes(reason), 30_000, `Event ${reason} on ${ns}/${name}`);

  it("refuses bad capture annotations as a whole, with a warning and an Event, and meshes the pod with the defaults", async () => {
    const run = kubectl([
      "-n",
      "shop",
      "run",
      "badly-annotated",
      "--image=localhost/web:1",
      "--annotations=config.trellis.dev/skip-subnets=10.0.0.0/99",
      "--annotations=config.trellis.dev/skip-outbound-ports=5432",
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(
      run.stderr,
      /Warning: trellis: config.trellis.dev\/skip-subnets on the pod: "10.0.0.0\/99" is not a CIDR.*meshed with the defaults/,
    );
    const pod = JSON.parse(
      cluster.kubectl(["-n", "shop", "get", "pod", "badly-annotated", "-o", "json"]),
    ) as V1Pod;
    assert.deepEqual(pod.spec?.initContainers?.[0]?.args, [
      "--inbound-port=4143",
      "--outbound-port=4140",
      "--proxy-uid=2102",
      "--skip-inbound-ports=4140,4143,4191",
    ]);
    await hasEvent("shop", "badly-annotated", "CaptureAnnotationsRefused");
  });

  it("leaves a hostNetwork pod unmeshed and says so", async () => {
    const run = kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "on-host", namespace: "shop" },
        spec: { hostNetwork: true, containers: [{ name: "agent", image: "localhost/agent:1" }] },
      }),
    );
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stderr, /Warning: trellis: pod not meshed: hostNetwork pods are never meshed/);
    assert.equal(
      cluster.kubectl(["-n", "shop", "get", "pod", "on-host", "-o", "jsonpath={.spec.initContainers}"]),
      "",
    );
    await hasEvent("shop", "on-host", "HostNetworkNotMeshed");
  });

  it("warns when the namespace enforces Pod Security baseline, whose refusal then names trellis-init", async () => {
    cluster.kubectl(["create", "namespace", "locked"]);
    cluster.kubectl(["label", "namespace", "locked", "pod-security.kubernetes.io/enforce=baseline"]);
    cluster.kubectl(["annotate", "namespace", "locked", "trellis.dev/inject=enabled"]);
    await new Promise((r) => setTimeout(r, 1500)); // the injector's namespace cache catches up
    const run = kubectl(["-n", "locked", "run", "web", "--image=localhost/web:1"]);
    assert.notEqual(run.status, 0, "the API server refuses the pod");
    assert.match(run.stderr, /Warning: trellis: namespace locked enforces Pod Security "baseline"/);
    assert.match(
      run.stderr,
      /violates PodSecurity "baseline:latest".*"trellis-init" must not include "NET_ADMIN", "NET_RAW"/,
    );
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
