// The work queue on its own, no cluster: de-duplication, one-at-a-time per key, delays and the
// growth of per-key back-off.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ExponentialBackoff, WorkQueue } from "./work-queue.ts";

describe("WorkQueue", () => {
  it("keeps a key once however often it is added", async () => {
    const q = new WorkQueue();
    for (const key of ["a", "b", "a", "a", "b", "c"]) q.add(key);
    assert.equal(q.length, 3);
    assert.deepEqual([await q.get(), await q.get(), await q.get()], ["a", "b", "c"]);
    assert.equal(q.length, 0);
  });

  it("hands a key out to one worker at a time and re-queues it if added while processing", async () => {
    const q = new WorkQueue();
    q.add("a");
    const first = await q.get();
    assert.equal(first, "a");
    q.add("a");
    q.add("a");
    assert.equal(q.length, 0, "a key being processed is not handed out again");
    const second = q.get();
    let handedOut = false;
    void second.then(() => {
      handedOut = true;
    });
    await sleep(5);
    assert.equal(handedOut, false);
    q.done("a");
    assert.equal(await second, "a", "re-queued once after done");
    q.done("a");
    assert.equal(q.length, 0);
  });

  it("resolves a waiting getter when a key arrives", async () => {
    const q = new WorkQueue();
    const pending = q.get();
    q.add("x");
    assert.equal(await pending, "x");
  });

  it("folds adds made in one tick into one hand-out, even with a worker waiting", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add("k");
    q.add("k");
    assert.equal(await waiting, "k");
    q.done("k");
    assert.equal(q.length, 0, "not re-queued: the second add came before the hand-out");
  });

  it("addAfter delays a key and keeps the earliest of several delays", async () => {
    const q = new WorkQueue();
    const started = Date.now();
    q.addAfter("k", 200);
    q.addAfter("k", 30);
    q.addAfter("k", 100);
    assert.equal(await q.get(), "k");
    const waited = Date.now() - started;
    assert.ok(waited >= 25 && waited < 150, `waited ${waited} ms`);
    q.done("k");
    await sleep(200);
    assert.equal(q.length, 0, "the later delays were folded into the earliest");
  });

  it("addRateLimited backs off exponentially per key and forget resets it", async () => {
    const q = new WorkQueue({ baseMs: 10, maxMs: 1000 });
    const delays = [q.addRateLimited("a"), q.addRateLimited("a"), q.addRateLimited("a")];
    assert.deepEqual(delays, [10, 20, 40]);
    assert.equal(q.addRateLimited("b"), 10, "back-off is per key");
    assert.equal(q.retries("a"), 3);
    q.forget("a");
    assert.equal(q.retries("a"), 0);
    assert.equal(q.addRateLimited("a"), 10);
    q.shutdown();
  });

  it("shutdown releases waiting workers and drops delayed keys", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.addAfter("late", 50);
    q.shutdown();
    assert.equal(await waiting, undefined);
    q.add("after");
    assert.equal(await q.get(), undefined);
  });
});

describe("ExponentialBackoff", () => {
  const table: Array<{ failures: number; base: number; max: number; want: number }> = [
    { failures: 0, base: 5, max: 300_000, want: 5 },
    { failures: 1, base: 5, max: 300_000, want: 10 },
    { failures: 10, base: 5, max: 300_000, want: 5120 },
    { failures: 16, base: 5, max: 300_000, want: 300_000 },
    { failures: 200, base: 5, max: 300_000, want: 300_000 },
  ];
  for (const { failures, base, max, want } of table) {
    it(`after ${failures} failures waits ${want} ms`, () => {
      const backoff = new ExponentialBackoff({ baseMs: base, maxMs: max });
      for (let i = 0; i < failures; i++) backoff.when("k");
      assert.equal(backoff.when("k"), want);
    });
  }
});
