// The injector's view of a namespace at admission: fresh from the API server whenever its cache
// does not say the namespace is meshed (the cache lags an annotation by up to about a second).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubernetesObject } from "@kubernetes/client-node";
import pino from "pino";
import type { Manager } from "../../kube/index.ts";
import { freshNamespaceAnnotations } from "./injector.ts";

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

  it("falls back to the cache when the read fails", async () => {
    const { manager } = reads(() => Promise.reject(new Error("timeout")));
    const annotations = freshNamespaceAnnotations(manager, { get: () => ns({ team: "shop" }) }, logger);
    assert.deepEqual(await annotations("shop"), { team: "shop" });
  });
});
