// The informer against a real API server: it lists, follows adds, updates and deletes, and
// converges after the API server restarts while objects change around it (relisting when its
// resourceVersion is gone), without losing a creation or a deletion.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CoreV1Api, type KubernetesObject, type V1ConfigMap } from "@kubernetes/client-node";
import { pino } from "pino";
import { LocalCluster, waitFor } from "../test/cluster/local-cluster.ts";
import { Informer, type InformerOptions, type InformerSpec } from "./informer.ts";
import { KubeClient } from "./rest-client.ts";

const configMaps: InformerSpec = {
  apiVersion: "v1",
  kind: "ConfigMap",
  plural: "configmaps",
  namespaced: true,
};
const logger = pino({ level: process.env.TRELLIS_LOG_LEVEL ?? "silent" });

describe("Informer", { timeout: 90_000 }, () => {
  let cluster: LocalCluster;
  let core: CoreV1Api;
  let client: KubeClient;

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0, controllers: false });
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    client = new KubeClient(cluster.kubeConfig());
    await core.createNamespace({ body: { metadata: { name: "informer" } } });
  });
  const running: Informer<V1ConfigMap>[] = [];
  const informerFor = (spec: InformerSpec, options: Partial<InformerOptions> = {}) => {
    const informer = new Informer<V1ConfigMap>(client, cluster.kubeConfig(), spec, { logger, ...options });
    running.push(informer);
    return informer;
  };
  after(async () => {
    await Promise.all(running.map((i) => i.stop()));
    client?.close();
    await cluster?.stop();
  });
  /**
   * Writes right after a restart may meet an API server that is still warming up: retry them,
   * taking `done` (409 for a create, 404 for a delete) as proof that an earlier try went through.
   */
  const retrying = (what: string, write: () => Promise<unknown>, done?: number) =>
    waitFor(
      () =>
        write().then(
          () => true,
          (err: { code?: number }) => {
            if (err.code === done) return true;
            throw err;
          },
        ),
      15_000,
      what,
    );

  const create = (name: string, data: Record<string, string> = {}, labels: Record<string, string> = {}) =>
    core.createNamespacedConfigMap({ namespace: "informer", body: { metadata: { name, labels }, data } });

  it("lists, then sees adds, updates and deletes in order, keyed namespace/name", async () => {
    await create("before-start", { v: "1" }, { app: "demo" });
    const informer = informerFor({ ...configMaps, namespace: "informer", labelSelector: "app=demo" });
    const seen: string[] = [];
    informer.addEventHandler({
      onAdd: (o) => seen.push(`add ${o.metadata?.name}`),
      onUpdate: (a, b) => seen.push(`update ${b.metadata?.name} ${a.data?.v}->${b.data?.v}`),
      onDelete: (o) => seen.push(`delete ${o.metadata?.name}`),
    });
    informer.start();
    await informer.waitForSync();
    assert.equal(informer.hasSynced(), true);
    assert.equal(informer.get("informer/before-start")?.data?.v, "1");
    assert.equal(informer.get("informer/before-start")?.kind, "ConfigMap");

    await create("after-start", { v: "1" }, { app: "demo" });
    await create("other-label", { v: "1" }, { app: "other" });
    await core.patchNamespacedConfigMap({
      namespace: "informer",
      name: "after-start",
      body: [{ op: "replace", path: "/data/v", value: "2" }],
    });
    await core.deleteNamespacedConfigMap({ namespace: "informer", name: "before-start" });
    await waitFor(async () => seen.length >= 4, 10_000, "four events");
    assert.deepEqual(seen, [
      "add before-start",
      "add after-start",
      "update after-start 1->2",
      "delete before-start",
    ]);
    assert.deepEqual(informer.keys(), ["informer/after-start"]);
    await informer.stop();
  });

  it("caches a transform's view without managedFields, and skips updates the view does not show", async () => {
    await create("viewed", { v: "1", noise: "a" }, { app: "view" });
    const keepV = (o: KubernetesObject): KubernetesObject =>
      ({
        apiVersion: o.apiVersion,
        kind: o.kind,
        metadata: o.metadata,
        data: { v: (o as V1ConfigMap).data?.v ?? "" },
      }) as V1ConfigMap;
    const informer = informerFor({
      ...configMaps,
      namespace: "informer",
      labelSelector: "app=view",
      transform: keepV,
    });
    const updates: string[] = [];
    informer.addEventHandler({ onUpdate: (_, b) => updates.push(b.data?.v ?? "") });
    informer.start();
    await informer.waitForSync();
    const cached = informer.get("informer/viewed");
    assert.deepEqual(cached?.data, { v: "1" });
    assert.equal(cached?.metadata?.managedFields, undefined);
    const patch = (key: string, value: string) =>
      core.patchNamespacedConfigMap({
        namespace: "informer",
        name: "viewed",
        body: [{ op: "replace", path: `/data/${key}`, value }],
      });
    await patch("noise", "b");
    await patch("v", "2");
    await waitFor(async () => informer.get("informer/viewed")?.data?.v === "2", 10_000, "v=2 in the cache");
    assert.deepEqual(updates, ["2"], "the change of a dropped field delivered no update");
    await informer.stop();
  });

  it("converges after an API server restart while objects are created and deleted", async () => {
    for (let i = 0; i < 5; i++) await create(`r-${i}`, { v: "0" });
    const informer = informerFor(configMaps, { backoffBaseMs: 100, backoffMaxMs: 1000 });
    const deleted: string[] = [];
    informer.addEventHandler({ onDelete: (o) => deleted.push(o.metadata?.name ?? "") });
    informer.start();
    await informer.waitForSync();
    const listsBefore = informer.stats.lists;

    await cluster.restartApiServer(500);
    // The informer is backing off or re-watching now: change the world under it.
    await retrying("a create after the restart", () => create("made-after-restart", { v: "new" }), 409);
    await retrying(
      "a delete after the restart",
      () => core.deleteNamespacedConfigMap({ namespace: "informer", name: "r-0" }),
      404,
    );
    await retrying("an update after the restart", () =>
      core.patchNamespacedConfigMap({
        namespace: "informer",
        name: "r-1",
        body: [{ op: "replace", path: "/data/v", value: "changed" }],
      }),
    );
    const truth = async () =>
      (await core.listNamespacedConfigMap({ namespace: "informer" })).items
        .map((c) => c.metadata?.name)
        .sort();
    await waitFor(
      async () => {
        const want = await truth();
        const have = informer
          .list("informer")
          .map((c) => c.metadata?.name)
          .sort();
        return (
          JSON.stringify(want) === JSON.stringify(have) && informer.get("informer/r-1")?.data?.v === "changed"
        );
      },
      30_000,
      "the cache to converge with the API server",
    );
    assert.ok(deleted.includes("r-0"), "the deletion was delivered");
    assert.ok(informer.get("informer/made-after-restart"));
    assert.ok(informer.stats.watches >= 2, "the watch was re-established");
    // The restarted API server's watch cache starts after our resourceVersion: 410, then a relist.
    assert.ok(informer.stats.gone >= 1, "the old resourceVersion was reported gone");
    assert.ok(informer.stats.lists > listsBefore, "and the informer relisted");
    await informer.stop();
  });
});
