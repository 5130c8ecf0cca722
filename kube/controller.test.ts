// Controllers on a Manager against a real API server: a Widget controller (a small test CRD)
// that adds a finalizer, server-side applies an owned ConfigMap, writes status conditions with
// observedGeneration and records Events; a flaky reconcile that is retried with growing
// back-off; a PermanentError that does not hot-loop; and the metrics endpoint.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { pino } from "pino";
import { LocalCluster, waitFor } from "../test/cluster/local-cluster.ts";
import { type Condition, setCondition } from "./conditions.ts";
import { PermanentError } from "./errors.ts";
import { addFinalizer, hasFinalizer, isBeingDeleted, removeFinalizer } from "./finalizers.ts";
import { Manager } from "./manager.ts";
import { withObservedGeneration } from "./object-status.ts";
import { refOf } from "./object-writer.ts";
import { isConflict } from "./rest-client.ts";

interface Widget extends KubernetesObject {
  spec?: { size?: number };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

const WIDGET_CRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: widgets.test.trellis.dev }
spec:
  group: test.trellis.dev
  names: { kind: Widget, plural: widgets, singular: widget, listKind: WidgetList }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: { type: object, x-kubernetes-preserve-unknown-fields: true }
            status: { type: object, x-kubernetes-preserve-unknown-fields: true }
`;
const FINALIZER = "test.trellis.dev/cleanup";
const NS = "ctrl";
const logger = pino({ level: process.env.TRELLIS_LOG_LEVEL ?? "silent" });

describe("Controller and Manager", { timeout: 90_000 }, () => {
  let cluster: LocalCluster;
  let core: CoreV1Api;
  let manager: Manager;
  const flakyCalls: number[] = [];
  let permanentCalls = 0;
  const burstSeen: number[] = [];

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0, controllers: false });
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    cluster.kubectl(["apply", "-f", "-"], WIDGET_CRD);
    cluster.kubectl(["wait", "--for=condition=Established", "crd/widgets.test.trellis.dev", "--timeout=30s"]);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    manager = new Manager({
      kubeConfig: cluster.kubeConfig(),
      name: "trellis-test",
      namespace: NS,
      leaderElection: false,
      metricsPort: 0,
      metricsHost: "127.0.0.1",
      logger,
    });
    setUpWidgetController(manager);
    setUpFlakyController(manager, flakyCalls);
    setUpPermanentController(manager, () => permanentCalls++);
    setUpCoalescingController(manager, burstSeen);
    await manager.start();
  });
  after(async () => {
    await manager?.stop();
    await cluster?.stop();
  });

  const widget = (name: string, size: number) =>
    cluster.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "test.trellis.dev/v1",
        kind: "Widget",
        metadata: { name, namespace: NS },
        spec: { size },
      }),
    );
  const getWidget = async (name: string): Promise<Widget> =>
    (await cluster.kubeConfig().makeApiClient(CustomObjectsApi).getNamespacedCustomObject({
      group: "test.trellis.dev",
      version: "v1",
      namespace: NS,
      plural: "widgets",
      name,
    })) as Widget;

  it("reconciles a Widget: finalizer, applied ConfigMap, status with observedGeneration, events", async () => {
    widget("alpha", 3);
    await waitFor(
      async () => (await getWidget("alpha")).status?.observedGeneration === 1,
      15_000,
      "alpha status",
    );
    const alpha = await getWidget("alpha");
    assert.ok(hasFinalizer(alpha, FINALIZER));
    const ready = alpha.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.reason, "ConfigApplied");
    const cm = await core.readNamespacedConfigMap({ name: "alpha-config", namespace: NS });
    assert.equal(cm.data?.size, "3");
    assert.equal(cm.metadata?.ownerReferences?.[0]?.name, "alpha");
    assert.ok(
      cm.metadata?.managedFields?.some((f) => f.manager === "trellis-test" && f.operation === "Apply"),
    );

    widget("alpha", 5);
    await waitFor(
      async () => (await getWidget("alpha")).status?.observedGeneration === 2,
      15_000,
      "alpha generation 2",
    );
    const cm2 = await core.readNamespacedConfigMap({ name: "alpha-config", namespace: NS });
    assert.equal(cm2.data?.size, "5");
    const transitioned = (await getWidget("alpha")).status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(transitioned?.lastTransitionTime, ready?.lastTransitionTime, "status did not flip");

    const events = await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: "involvedObject.name=alpha",
    });
    const configured = events.items.find((e) => e.reason === "ConfigApplied");
    assert.equal(configured?.source?.component, "trellis-test");
    assert.ok((configured?.count ?? 0) >= 1);
  });

  it("re-creates an owned object that is deleted (the watch maps it to its owner)", async () => {
    await core.deleteNamespacedConfigMap({ name: "alpha-config", namespace: NS });
    await waitFor(
      async () =>
        (await core.readNamespacedConfigMap({ name: "alpha-config", namespace: NS })).data?.size === "5",
      10_000,
      "alpha-config to come back",
    );
  });

  it("removes its finalizer when the Widget is deleted", async () => {
    cluster.kubectl(["delete", "widget", "alpha", "-n", NS, "--wait=false"]);
    await waitFor(
      () =>
        getWidget("alpha").then(
          () => false,
          () => true,
        ),
      15_000,
      "alpha to be gone",
    );
  });

  it("a finalizer patch against a stale resourceVersion is refused", async () => {
    widget("stale", 1);
    await waitFor(async () => hasFinalizer(await getWidget("stale"), FINALIZER), 15_000, "stale finalizer");
    const current = await getWidget("stale");
    widget("stale", 2);
    await assert.rejects(addFinalizer(manager.writer, current, "test.trellis.dev/other"), (err) => {
      assert.ok(isConflict(err), String(err));
      return true;
    });
    assert.equal((await getWidget("stale")).metadata?.finalizers?.includes("test.trellis.dev/other"), false);
  });

  it("server-side applies status through the status subresource under the field manager", async () => {
    await manager.writer.applyStatus<Widget>({
      apiVersion: "test.trellis.dev/v1",
      kind: "Widget",
      metadata: { name: "stale", namespace: NS },
      status: { note: "applied" } as Widget["status"],
    });
    const live = await getWidget("stale");
    assert.equal((live.status as { note?: string }).note, "applied");
    const entry = live.metadata?.managedFields?.find(
      (f) => f.operation === "Apply" && f.subresource === "status",
    );
    assert.equal(entry?.manager, "trellis-test");
  });

  it("retries a failing reconcile with growing back-off until it succeeds, then stops", async () => {
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: "flaky", labels: { test: "flaky" } } },
    });
    await waitFor(async () => flakyCalls.length >= 4, 10_000, "four flaky reconciles");
    await sleep(500);
    assert.equal(flakyCalls.length, 4, "no more reconciles after the success");
    const gaps = flakyCalls.slice(1).map((t, i) => t - (flakyCalls[i] ?? 0));
    assert.ok(gaps[0]! >= 40, `first retry after ~50 ms: ${gaps}`);
    assert.ok(gaps[1]! > gaps[0]! && gaps[2]! > gaps[1]!, `back-off grows: ${gaps}`);
  });

  it("does not hot-loop on a PermanentError, and tries again on the next change", async () => {
    await core.createNamespacedConfigMap({
      namespace: NS,
      body: { metadata: { name: "broken", labels: { test: "permanent" } }, data: { v: "1" } },
    });
    await waitFor(async () => permanentCalls >= 1, 10_000, "the first reconcile");
    await sleep(1000);
    assert.equal(permanentCalls, 1);
    await core.patchNamespacedConfigMap({
      namespace: NS,
      name: "broken",
      body: [{ op: "replace", path: "/data/v", value: "2" }],
    });
    await waitFor(async () => permanentCalls >= 2, 10_000, "a reconcile after the change");
    await sleep(500);
    assert.equal(permanentCalls, 2);
  });

  it("aggregates repeated events and keeps secrets out of them", async () => {
    const cm = await core.readNamespacedConfigMap({ name: "flaky", namespace: NS });
    const obj = { ...cm, apiVersion: "v1", kind: "ConfigMap" };
    for (let i = 0; i < 3; i++)
      await manager.events.event(obj, "Warning", "Repeated", "the same thing happened");
    const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----";
    await manager.events.event(obj, "Warning", "Leaky", `failed to parse ${pem} with token=abcdefghijklmnop`);
    const events = (
      await core.listNamespacedEvent({ namespace: NS, fieldSelector: "involvedObject.name=flaky" })
    ).items;
    const repeated = events.filter((e) => e.reason === "Repeated");
    assert.equal(repeated.length, 1, "one Event for three identical ones");
    assert.equal(repeated[0]?.count, 3);
    assert.ok(new Date(String(repeated[0]?.lastTimestamp)) >= new Date(String(repeated[0]?.firstTimestamp)));
    const leaky = events.find((e) => e.reason === "Leaky")?.message ?? "";
    assert.doesNotMatch(leaky, /MIIEvQ|abcdefghijklmnop/);
    assert.match(leaky, /redacted/);
  });

  it("shares one informer between callers that ask for the same resource", () => {
    const spec = { apiVersion: "test.trellis.dev/v1", kind: "Widget", plural: "widgets", namespaced: true };
    assert.equal(manager.informer(spec), manager.informer({ ...spec }));
    assert.notEqual(manager.informer(spec), manager.informer({ ...spec, namespace: NS }));
    const view = (o: KubernetesObject) => ({ apiVersion: o.apiVersion, kind: o.kind, metadata: o.metadata });
    assert.equal(
      manager.informer({ ...spec, transform: view }),
      manager.informer({ ...spec, transform: view }),
    );
    assert.notEqual(manager.informer(spec), manager.informer({ ...spec, transform: view }));
  });

  it("coalesces a burst of events from a source watched with coalesceMs into few reconciles", async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        core.createNamespacedConfigMap({
          namespace: NS,
          body: { metadata: { name: `burst-${i}`, labels: { test: "burst" } } },
        }),
      ),
    );
    await waitFor(async () => burstSeen.at(-1) === 20, 10_000, "a reconcile that sees all 20");
    assert.ok(burstSeen.length <= 4, `20 creations cost ${burstSeen.length} reconciles: ${burstSeen}`);
  });

  it("serves health, readiness and Prometheus metrics", async () => {
    const base = `http://127.0.0.1:${manager.port}`;
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200, await ready.text());
    const res = await fetch(`${base}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain; version=0.0.4/);
    const text = await res.text();
    assert.match(text, /trellis_controller_reconcile_total\{controller="flaky",result="error"\} 3/);
    assert.match(text, /trellis_controller_reconcile_total\{controller="flaky",result="success"\} 1/);
    assert.match(
      text,
      /trellis_controller_reconcile_total\{controller="permanent",result="permanent_error"\} 2/,
    );
    assert.match(text, /trellis_controller_reconcile_errors_total\{controller="flaky"\} 3/);
    assert.match(
      text,
      /trellis_controller_reconcile_time_seconds_bucket\{controller="widgets",le="\+Inf"\} \d+/,
    );
    assert.match(text, /trellis_workqueue_depth\{name="widgets"\} 0/);
    assert.match(text, /process_resident_memory_bytes \d+/);
  });
});

function setUpWidgetController(manager: Manager): void {
  const widgets = manager.informer<Widget>({
    apiVersion: "test.trellis.dev/v1",
    kind: "Widget",
    plural: "widgets",
    namespaced: true,
  });
  const owned = manager.informer<V1ConfigMap>({
    apiVersion: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    labelSelector: "test.trellis.dev/widget",
  });
  const { writer, events } = manager;
  manager
    .controller({
      name: "widgets",
      reconcile: async ({ key, name, namespace, logger }) => {
        const w = widgets.get(key);
        if (!w) return;
        if (isBeingDeleted(w)) {
          await removeFinalizer(writer, w, FINALIZER);
          logger.info("finalizer removed");
          return;
        }
        if (!hasFinalizer(w, FINALIZER)) {
          await addFinalizer(writer, w, FINALIZER);
          return;
        }
        await writer.apply<V1ConfigMap>({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name: `${name}-config`,
            namespace,
            labels: { "test.trellis.dev/widget": name },
            ownerReferences: [
              { apiVersion: w.apiVersion!, kind: w.kind!, name, uid: w.metadata!.uid!, controller: true },
            ],
          },
          data: { size: String(w.spec?.size ?? 0) },
        });
        const conditions = setCondition(w.status?.conditions, {
          type: "Ready",
          status: "True",
          reason: "ConfigApplied",
          message: `ConfigMap ${name}-config is applied.`,
          observedGeneration: w.metadata?.generation,
        });
        await writer.patchStatus(refOf(w), withObservedGeneration(w, { conditions }));
        await events.event(w, "Normal", "ConfigApplied", `ConfigMap ${name}-config is applied.`);
      },
    })
    .watches(widgets)
    .watches(owned, (cm) => {
      const owner = cm.metadata?.labels?.["test.trellis.dev/widget"];
      return owner ? [`${cm.metadata?.namespace}/${owner}`] : [];
    });
}

function setUpFlakyController(manager: Manager, calls: number[]): void {
  const flaky = manager.informer<V1ConfigMap>({
    apiVersion: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    namespace: NS,
    labelSelector: "test=flaky",
  });
  manager
    .controller({
      name: "flaky",
      backoff: { baseMs: 50, maxMs: 5000 },
      reconcile: async () => {
        calls.push(Date.now());
        if (calls.length <= 3) throw new Error(`transient failure ${calls.length}`);
      },
    })
    .watches(flaky);
}

function setUpPermanentController(manager: Manager, count: () => void): void {
  const broken = manager.informer<V1ConfigMap>({
    apiVersion: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    labelSelector: "test=permanent",
  });
  manager
    .controller({
      name: "permanent",
      backoff: { baseMs: 5, maxMs: 100 },
      reconcile: async () => {
        count();
        throw new PermanentError("InvalidSpec", "the spec can never work");
      },
    })
    .watches(broken);
}

/** One key for every ConfigMap labelled test=burst, its events coalesced over 300 ms. */
function setUpCoalescingController(manager: Manager, seen: number[]): void {
  const burst = manager.informer<V1ConfigMap>({
    apiVersion: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    namespaced: true,
    namespace: NS,
    labelSelector: "test=burst",
  });
  manager
    .controller({
      name: "coalescing",
      reconcile: async () => {
        seen.push(burst.list().length);
      },
    })
    .watches(burst, () => ["all"], { coalesceMs: 300 });
}
