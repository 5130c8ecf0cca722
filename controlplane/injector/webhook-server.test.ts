// The injector's HTTPS endpoint as the API server uses it: keep-alive connections that sit idle
// between pod creations must stay open longer than the API server's own idle timeout (90 s), or
// a POST sent as the server closes the connection fails and the pod is admitted without a proxy.
// It answers only what it is asked (the CREATE of a Pod in an admission.k8s.io/v1 review), a
// pod that cannot be meshed with a warning, and a body it cannot answer with 400.
import assert from "node:assert/strict";
import { Agent, request } from "node:https";
import { after, before, describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import pino from "pino";
import { Counter } from "../../kube/index.ts";
import { generateKeyPair, issueLeaf, privateKeyToPem } from "../../pki/index.ts";
import { fromNow, HOUR, trustAnchor } from "../../pki/testing/hierarchy.ts";
import type { InjectionConfig, InjectionNotice } from "./inject.ts";
import {
  admissionResponse,
  KEEP_ALIVE_TIMEOUT_MS,
  MalformedReview,
  startWebhookServer,
} from "./webhook-server.ts";

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

function post(
  port: number,
  agent: Agent,
  body = review,
): Promise<{ status: number; reused: boolean; body: string }> {
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
    req.end(body);
  });
}

/** The webhook server on loopback with the test leaf, no mesh config and a silent logger. */
function startTestServer(admissions: Counter, maxBufferedBytes?: number) {
  return startWebhookServer({
    port: 0,
    host: "127.0.0.1",
    tls: { cert: leaf.pem + anchor.certificate.pem, key: privateKeyToPem(keys.privateKey) },
    ctx: {
      config: () => undefined,
      namespaceAnnotations: () => ({}),
      logger: pino({ level: "silent" }),
      admissions,
    },
    ...(maxBufferedBytes !== undefined ? { maxBufferedBytes } : {}),
  });
}

describe("injector webhook server", () => {
  let server: Awaited<ReturnType<typeof startWebhookServer>>;
  const admissions = new Counter("admissions_total", "test");

  before(async () => {
    server = await startTestServer(admissions);
  });
  after(() => server.server.close());

  it("answers 400, with the reason, to a body that is not an AdmissionReview", async () => {
    const agent = new Agent({ keepAlive: false });
    try {
      const notJson = await post(server.port, agent, "{not json");
      assert.equal(notJson.status, 400);
      const v1beta1 = await post(
        server.port,
        agent,
        review.replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1"),
      );
      assert.deepEqual(
        [v1beta1.status, v1beta1.body],
        [400, "malformed AdmissionReview: not an admission.k8s.io/v1 AdmissionReview\n"],
      );
    } finally {
      agent.destroy();
    }
  });

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

describe("injector webhook server under load", () => {
  it("answers 503 once the bodies held at once pass the bound, and serves again when they are gone", async () => {
    const admissions = new Counter("bounded_total", "test");
    const bounded = await startTestServer(admissions, 1024 * 1024);
    const agent = new Agent({ keepAlive: false });
    try {
      // A client holding 700 KiB of a body it does not finish.
      const held = request({
        host: "127.0.0.1",
        port: bounded.port,
        path: "/inject",
        method: "POST",
        agent,
        ca: anchor.certificate.pem,
        headers: { "content-length": String(800 * 1024) },
      });
      const heldAnswer = new Promise<number>((resolve, reject) => {
        held.on("response", (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        held.on("error", reject);
      });
      held.write(Buffer.alloc(700 * 1024, 0x20));
      // Another 700 KiB would pass 1 MiB: refused once the first body has arrived.
      let status = 0;
      for (const deadline = Date.now() + 10_000; status !== 503 && Date.now() < deadline; ) {
        status = (await post(bounded.port, agent, " ".repeat(700 * 1024))).status;
      }
      assert.equal(status, 503);
      held.end(Buffer.alloc(100 * 1024, 0x20));
      assert.equal(await heldAnswer, 400, "the held request is still answered (its body is not JSON)");
      assert.equal((await post(bounded.port, agent)).status, 200, "the bound is free again");
    } finally {
      agent.destroy();
      bounded.server.close();
    }
  });
});

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

function podReview(over: Record<string, unknown> = {}, pod: Record<string, unknown> = {}) {
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: "u-2",
      kind: { group: "", version: "v1", kind: "Pod" },
      operation: "CREATE",
      namespace: "shop",
      object: { metadata: { name: "web" }, spec: { containers: [{ name: "app", image: "app:1" }] }, ...pod },
      ...over,
    },
  };
}

describe("admission reviews", () => {
  const admissions = new Counter("reviews_total", "test");
  const ctx = {
    config: () => config,
    namespaceAnnotations: () => ({ "trellis.dev/inject": "enabled" }),
    logger: pino({ level: "silent" }),
    admissions,
  };
  const answer = async (r: unknown): Promise<Record<string, unknown>> => {
    const review = (await admissionResponse(r as Parameters<typeof admissionResponse>[0], ctx)) as {
      response: Record<string, unknown>;
    };
    return review.response;
  };

  it("patches only the CREATE of a Pod", async () => {
    assert.equal((await answer(podReview())).patchType, "JSONPatch");
    for (const over of [
      { operation: "UPDATE" },
      { operation: "DELETE" },
      { kind: { group: "apps", version: "v1", kind: "Deployment" } },
      { kind: { group: "", version: "v1", kind: "Service" } },
      { subResource: "ephemeralcontainers" },
    ])
      assert.deepEqual(await answer(podReview(over)), { uid: "u-2", allowed: true }, JSON.stringify(over));
  });

  it("refuses what it cannot answer: another review version, no uid, a CREATE without the pod", async () => {
    await assert.rejects(answer({ ...podReview(), apiVersion: "admission.k8s.io/v1beta1" }), MalformedReview);
    await assert.rejects(answer({ ...podReview(), kind: "Pod" }), MalformedReview);
    await assert.rejects(answer(podReview({ uid: undefined })), MalformedReview);
    await assert.rejects(answer(podReview({ object: undefined })), MalformedReview);
    await assert.rejects(answer(null), MalformedReview);
  });

  it("admits a pod with a container named like the proxy, unmeshed, and says why", async () => {
    const clash = await answer(
      podReview({}, { spec: { containers: [{ name: "trellis-proxy", image: "mine:1" }] } }),
    );
    assert.equal(clash.patch, undefined);
    assert.equal(clash.allowed, true);
    assert.match(
      String((clash.warnings as string[])[0]),
      /^trellis: pod not meshed: the pod already has a container named trellis-proxy/,
    );
  });

  it("leaves a trace when it skips a hostNetwork pod", async () => {
    const host = await answer(
      podReview({}, { spec: { hostNetwork: true, containers: [{ name: "a", image: "a:1" }] } }),
    );
    assert.equal(host.patch, undefined);
    assert.match(String((host.warnings as string[])[0]), /hostNetwork pods are never meshed/);
  });
});

describe("admission notices", () => {
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
  const owned = {
    metadata: {
      generateName: "web-5d9f-",
      ownerReferences: [
        { apiVersion: "apps/v1", kind: "ReplicaSet", name: "web-5d9f", uid: "u", controller: true },
      ],
    },
  };

  it("carries the notices as warnings and records them as Events on the pod's owner, but not on a dry run", async () => {
    const review = async (dryRun: boolean, spec: object) =>
      (
        (await admissionResponse(
          podReview(
            { dryRun },
            { ...owned, spec: { containers: [{ name: "web", image: "web:1" }], ...spec } },
          ) as never,
          ctx,
        )) as { response: { warnings?: string[]; patch?: string } }
      ).response;
    const injected = await review(false, {});
    assert.ok(injected.patch);
    assert.match(injected.warnings?.[0] ?? "", /enforces Pod Security "baseline"/);
    const host = await review(false, { hostNetwork: true });
    assert.equal(host.patch, undefined);
    assert.match(host.warnings?.[0] ?? "", /hostNetwork pods are never meshed/);
    assert.deepEqual(events, [
      ["ReplicaSet/web-5d9f", "PodSecurityForbidsCapture"],
      ["ReplicaSet/web-5d9f", "HostNetworkNotMeshed"],
    ]);
    await review(true, { hostNetwork: true });
    assert.equal(events.length, 2, "a dry run records nothing");
  });

  it("never meshes a pod of kube-system or trellis-system, nor records an Event there", async () => {
    for (const namespace of ["kube-system", "trellis-system"]) {
      const pod = {
        ...owned,
        metadata: { ...owned.metadata, annotations: { "trellis.dev/capture-mode": "bogus" } },
        spec: { containers: [{ name: "web", image: "web:1" }] },
      };
      const review = (await admissionResponse(podReview({ namespace }, pod) as never, ctx)) as {
        response: Record<string, unknown>;
      };
      assert.deepEqual(review.response, { uid: "u-2", allowed: true }, namespace);
    }
    assert.equal(events.length, 2, "no Event in a namespace the mesh never touches");
  });
});
