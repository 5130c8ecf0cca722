// The injector's view of a namespace at admission: fresh from the API server whenever its cache
// does not say the namespace is meshed (the cache lags an annotation by up to about a second).
// And what an admission review may cost in API calls: reviews come from whatever reaches the
// webhook's port, so namespace reads and Event writes are bounded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import pino from "pino";
import type { Manager } from "../../kube/index.ts";
import type { InjectionNotice } from "./inject.ts";
import {
  freshNamespaceAnnotations,
  MAX_NAMESPACE_READS,
  MAX_QUEUED_EVENTS,
  queuedEvents,
} from "./injector.ts";

const ns = (annotations: Record<string, string>): KubernetesObject => ({
  metadata: { name: "shop", annotations },
});

function reads(answer: () => Promise<KubernetesObject>) {
  const calls: string[] = [];
  const manager = {
    client: {
      get: (_type: unknown, name: string) => {
        calls.push(name);
        return answer();
      },
    },
  } as unknown as Manager;
  return { manager, calls };
}

describe("namespace annotations at admission", () => {
  const logger = pino({ level: "silent" });

  it("answers from the cache when it says the namespace is meshed", async () => {
    const { manager, calls } = reads(() => Promise.reject(new Error("not called")));
    const annotations = freshNamespaceAnnotations(
      manager,
      { get: () => ns({ "trellis.dev/inject": "enabled" }) },
      logger,
    );
    assert.equal((await annotations("shop"))["trellis.dev/inject"], "enabled");
    assert.deepEqual(calls, []);
  });

  it("reads the namespace when the cache has not seen its annotation yet, once for concurrent pods", async () => {
    const { manager, calls } = reads(async () => ns({ "trellis.dev/inject": "enabled" }));
    const annotations = freshNamespaceAnnotations(manager, { get: () => ns({}) }, logger);
    const answers = await Promise.all([annotations("shop"), annotations("shop"), annotations("shop")]);
    assert.ok(answers.every((a) => a["trellis.dev/inject"] === "enabled"));
    assert.deepEqual(calls, ["shop"], "one read for a burst");
    await annotations("shop");
    assert.deepEqual(calls, ["shop", "shop"], "and a new one afterwards");
  });

  it("reads at most MAX_NAMESPACE_READS namespaces at once; the rest answer from the cache", async () => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { manager, calls } = reads(() => held.then(() => ns({ "trellis.dev/inject": "enabled" })));
    const annotations = freshNamespaceAnnotations(manager, { get: () => ns({ team: "t" }) }, logger);
    const names = Array.from({ length: MAX_NAMESPACE_READS + 20 }, (_, i) => `made-up-${i}`);
    const pending = names.map((name) => annotations(name));
    assert.equal(calls.length, MAX_NAMESPACE_READS);
    release();
    const answers = await Promise.all(pending);
    assert.equal(answers.filter((a) => a["trellis.dev/inject"] === "enabled").length, MAX_NAMESPACE_READS);
    assert.deepEqual(answers.at(-1), { team: "t" }, "past the bound, the cache's answer");
  });

  it("falls back to the cache when the read fails", async () => {
    const { manager } = reads(() => Promise.reject(new Error("timeout")));
    const annotations = freshNamespaceAnnotations(manager, { get: () => ns({ team: "shop" }) }, logger);
    assert.deepEqual(await annotations("shop"), { team: "shop" });
  });
});

describe("admission Events", () => {
  const pod: KubernetesObject = { apiVersion: "v1", kind: "Pod", metadata: { name: "p", namespace: "shop" } };
  const notice: InjectionNotice = { reason: "NameTaken", message: "trellis: pod not meshed" };

  it("are written one at a time, at most MAX_QUEUED_EVENTS waiting; the rest are dropped and counted", async () => {
    let writes = 0;
    let dropped = 0;
    const releases: Array<() => void> = [];
    const record = queuedEvents(
      () => {
        writes++;
        return new Promise<void>((resolve) => releases.push(resolve));
      },
      MAX_QUEUED_EVENTS,
      () => dropped++,
    );
    for (let i = 0; i < MAX_QUEUED_EVENTS + 50; i++) record(pod, notice);
    assert.equal(writes, 1, "one write in flight");
    assert.equal(dropped, 49, "one writing, MAX_QUEUED_EVENTS waiting, the rest dropped");
    while (releases.length > 0) {
      releases.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(writes, MAX_QUEUED_EVENTS + 1, "every queued Event is written");
    record(pod, notice);
    assert.equal(writes, MAX_QUEUED_EVENTS + 2, "an idle queue writes at once");
  });
});
