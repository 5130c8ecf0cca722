// The injector's HTTPS endpoint as the API server uses it: keep-alive connections that sit idle
// between pod creations must stay open longer than the API server's own idle timeout (90 s), or
// a POST sent as the server closes the connection fails and the pod is admitted without a proxy.
import assert from "node:assert/strict";
import { Agent, request } from "node:https";
import { after, before, describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import pino from "pino";
import { Counter } from "../../kube/index.ts";
import { generateKeyPair, issueLeaf, privateKeyToPem } from "../../pki/index.ts";
import { fromNow, HOUR, trustAnchor } from "../../pki/testing/hierarchy.ts";
import type { InjectionConfig, InjectionNotice } from "./inject.ts";
import { admissionResponse, KEEP_ALIVE_TIMEOUT_MS, startWebhookServer } from "./webhook-server.ts";

const anchor = trustAnchor("Injector Test Root");
const keys = generateKeyPair();
const leaf = issueLeaf({
  publicKey: keys.publicKey,
  signer: anchor.signer,
  notAfter: fromNow(HOUR),
  ipAddresses: ["127.0.0.1"],
});

const review = JSON.stringify({
  apiVersion: "admission.k8s.io/v1",
  kind: "AdmissionReview",
  request: { uid: "u-1", namespace: "shop", object: { metadata: { name: "p" }, spec: { containers: [] } } },
});

function post(port: number, agent: Agent): Promise<{ status: number; reused: boolean; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/inject?timeout=10s",
        method: "POST",
        agent,
        ca: anchor.certificate.pem,
        headers: { "content-type": "application/json" },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, body }));
      },
    );
    req.on("error", reject);
    req.end(review);
  });
}

describe("injector webhook server", () => {
  let server: Awaited<ReturnType<typeof startWebhookServer>>;
  const admissions = new Counter("admissions_total", "test");

  before(async () => {
    server = await startWebhookServer({
      port: 0,
      host: "127.0.0.1",
      tls: { cert: leaf.pem + anchor.certificate.pem, key: privateKeyToPem(keys.privateKey) },
      ctx: {
        config: () => undefined,
        namespaceAnnotations: () => ({}),
        logger: pino({ level: "silent" }),
        admissions,
      },
    });
  });
  after(() => server.server.close());

  it("keeps an idle keep-alive connection open past Node's 5 s default, longer than the API server's 90 s", async () => {
    assert.ok(KEEP_ALIVE_TIMEOUT_MS > 90_000);
    assert.equal(server.server.keepAliveTimeout, KEEP_ALIVE_TIMEOUT_MS);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await post(server.port, agent);
      assert.equal(first.status, 200);
      assert.equal(first.reused, false);
      // Idle for longer than Node's default keepAliveTimeout (5 s): the connection must still be there.
      await new Promise((r) => setTimeout(r, 6_000));
      const second = await post(server.port, agent);
      assert.equal(second.status, 200);
      assert.equal(second.reused, true, "the idle connection was closed by the server");
      assert.deepEqual(JSON.parse(second.body).response, { uid: "u-1", allowed: true });
    } finally {
      agent.destroy();
    }
  });
});

describe("admission response", () => {
  const config: InjectionConfig = {
    proxyImage: "localhost/trellis/proxy",
    initImage: "localhost/trellis/init:1.0.0",
    captureMode: "InitContainer",
    cniImage: "localhost/trellis/cni:1.0.0",
    defaultProxyVersion: "1.0.0",
    logLevel: "info",
    resources: {},
    trustDomain: "cluster.local",
  };
  const events: Array<[string, string]> = [];
  const ctx = {
    config: () => config,
    namespaceAnnotations: () => ({ "trellis.dev/inject": "enabled" }),
    namespaceLabels: () => ({ "pod-security.kubernetes.io/enforce": "baseline" }),
    recordEvent: (regarding: KubernetesObject, notice: InjectionNotice) =>
      events.push([`${regarding.kind}/${regarding.metadata?.name}`, notice.reason]),
    logger: pino({ level: "silent" }),
    admissions: new Counter("admissions_total", "test"),
  };
  const podOf = (spec: object) => ({
    metadata: {
      generateName: "web-5d9f-",
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-5d9f", uid: "u", controller: true },
      ],
    },
    spec: { containers: [{ name: "web", image: "web:1" }], ...spec },
  });

  it("carries the notices as warnings and records them as Events on the pod's owner, but not on a dry run", () => {
    events.length = 0;
    const review = (dryRun: boolean, spec: object) =>
      admissionResponse({ request: { uid: "u", namespace: "shop", object: podOf(spec), dryRun } }, ctx) as {
        response: { warnings?: string[]; patch?: string };
      };
    const injected = review(false, {});
    assert.ok(injected.response.patch);
    assert.match(injected.response.warnings?.[0] ?? "", /enforces Pod Security "baseline"/);
    const host = review(false, { hostNetwork: true });
    assert.equal(host.response.patch, undefined);
    assert.match(host.response.warnings?.[0] ?? "", /hostNetwork pods are not meshed/);
    assert.deepEqual(events, [
      ["ReplicaSet/web-5d9f", "PodSecurityForbidsCapture"],
      ["ReplicaSet/web-5d9f", "HostNetworkNotMeshed"],
    ]);
    review(true, { hostNetwork: true });
    assert.equal(events.length, 2, "a dry run records nothing");
  });
});
