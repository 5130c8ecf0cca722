// The local cluster is real: the real kubectl and the TypeScript client see Ready fake nodes,
// Deployments roll out through controller-manager, scheduler and KWOK, `kubectl rollout
// restart` makes new pods, and the API server calls an admission webhook on loopback.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { after, before, describe, it } from "node:test";
import { AdmissionregistrationV1Api, AppsV1Api, CoreV1Api } from "@kubernetes/client-node";
import { issueServingCertificate } from "./cluster-pki.ts";
import { LocalCluster, waitFor } from "./local-cluster.ts";

const deployment = (name: string, replicas: number) => `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: default }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      containers: [{ name: app, image: "localhost/demo:1" }]
`;

describe("local cluster", { timeout: 240_000 }, () => {
  let cluster: LocalCluster;

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 3 });
  });
  after(async () => {
    await cluster?.stop();
  });

  it("kubectl lists the fake nodes as Ready", () => {
    const out = cluster.kubectl(["get", "nodes", "--no-headers"]);
    const lines = out.trim().split("\n");
    assert.equal(lines.length, 3, out);
    for (const line of lines) assert.match(line, /^kwok-node-\d+\s+Ready\s/);
    assert.match(cluster.kubectl(["version", "-o", "json"]), /"gitVersion": "v1\.\d+\.\d+"/);
  });

  it("a 3-replica Deployment becomes 3/3 available", async () => {
    cluster.kubectl(["apply", "-f", "-"], deployment("web", 3));
    const apps = cluster.kubeConfig().makeApiClient(AppsV1Api);
    await waitFor(
      async () =>
        (await apps.readNamespacedDeployment({ name: "web", namespace: "default" })).status
          ?.availableReplicas === 3,
      60_000,
      "deployment web 3/3",
    );
    const pods = await cluster.kubeConfig().makeApiClient(CoreV1Api).listNamespacedPod({
      namespace: "default",
      labelSelector: "app=web",
    });
    assert.equal(pods.items.length, 3);
    for (const pod of pods.items) {
      assert.equal(pod.status?.phase, "Running");
      assert.match(pod.spec?.nodeName ?? "", /^kwok-node-/);
    }
  });

  it("kubectl rollout restart replaces the pods", async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const before = new Set(
      (await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" })).items.map(
        (p) => p.metadata?.uid,
      ),
    );
    cluster.kubectl(["rollout", "restart", "deployment/web"]);
    cluster.kubectl(["rollout", "status", "deployment/web", "--timeout=90s"]);
    await waitFor(
      async () => {
        const pods = (await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" })).items;
        const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
        return live.length === 3 && live.every((p) => !before.has(p.metadata?.uid));
      },
      60_000,
      "three new pods",
    );
  });

  it("a running pod marked not Ready (as the node controller does after a missed heartbeat) is Ready again", async () => {
    const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    const live = (
      await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" })
    ).items.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === "Running");
    const name = live[0]?.metadata?.name;
    assert.ok(name, "a running web pod");
    const ready = async () =>
      (await core.readNamespacedPod({ name, namespace: "default" })).status?.conditions?.find(
        (c) => c.type === "Ready",
      )?.status;
    cluster.kubectl([
      "patch",
      "pod",
      name,
      "--subresource=status",
      "--type=strategic",
      "-p",
      JSON.stringify({
        status: { conditions: [{ type: "Ready", status: "False", reason: "NodeNotReady" }] },
      }),
    ]);
    await waitFor(async () => (await ready()) === "True", 30_000, `pod ${name} Ready again`);
  });

  it("the API server calls a mutating webhook served on loopback", async () => {
    const cert = issueServingCertificate(cluster.pki.dir, "test-webhook", { ipAddresses: ["127.0.0.1"] });
    const calls: string[] = [];
    const server: Server = createServer(
      { cert: readFileSync(cert.cert), key: readFileSync(cert.key) },
      (req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => {
          body += c.toString();
        });
        req.on("end", () => {
          const review = JSON.parse(body) as {
            request: { uid: string; name?: string; object: { metadata: { name: string } } };
          };
          calls.push(review.request.object.metadata.name);
          const patch = [{ op: "add", path: "/metadata/labels/webhook-seen", value: "yes" }];
          res.setHeader("content-type", "application/json");
          res.end(
            JSON.stringify({
              apiVersion: "admission.k8s.io/v1",
              kind: "AdmissionReview",
              response: {
                uid: review.request.uid,
                allowed: true,
                patchType: "JSONPatch",
                patch: Buffer.from(JSON.stringify(patch)).toString("base64"),
              },
            }),
          );
        });
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const port = (server.address() as { port: number }).port;
      cluster.kubectl(["create", "namespace", "hooked"]);
      cluster.kubectl(["label", "namespace", "hooked", "webhook-test=on"]);
      await cluster
        .kubeConfig()
        .makeApiClient(AdmissionregistrationV1Api)
        .createMutatingWebhookConfiguration({
          body: {
            metadata: { name: "test-label" },
            webhooks: [
              {
                name: "label.test.trellis.dev",
                clientConfig: {
                  url: `https://127.0.0.1:${port}/mutate`,
                  caBundle: readFileSync(cluster.pki.caCert).toString("base64"),
                },
                rules: [
                  { operations: ["CREATE"], apiGroups: [""], apiVersions: ["v1"], resources: ["pods"] },
                ],
                namespaceSelector: { matchLabels: { "webhook-test": "on" } },
                admissionReviewVersions: ["v1"],
                sideEffects: "None",
                failurePolicy: "Fail",
              },
            ],
          },
        });
      // Asynchronous: the webhook is served by this very process, whose event loop must keep running.
      await cluster.kubectlAsync([
        "-n",
        "hooked",
        "run",
        "probe",
        "--image=localhost/demo:1",
        "--labels=app=probe",
      ]);
      const labels = JSON.parse(
        cluster.kubectl(["-n", "hooked", "get", "pod", "probe", "-o", "jsonpath={.metadata.labels}"]),
      );
      assert.deepEqual(labels, { app: "probe", "webhook-seen": "yes" });
      assert.deepEqual(calls, ["probe"]);
    } finally {
      server.close();
    }
  });
});
