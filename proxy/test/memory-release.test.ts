// The memory release: the schedule (memory-release.ts) as a table of runs, and the native half
// against the real allocator — pages glibc holds free inside its heap stay in the process's RSS
// until releaseFreeMemory() gives them back.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { buildNativeAddon } from "../../hack/build-native.ts";
import { MemoryRelease, type ReleaseResult } from "../memory-release.ts";

describe("memory release schedule", () => {
  it("releases at start, then every interval unless the event loop was more than half busy", async () => {
    const busy = [0, 0.1, 0.9, 0.5, 0.51, 0];
    const runs: ReleaseResult[] = [];
    let releases = 0;
    const m = new MemoryRelease({
      intervalMs: 20,
      release: () => ++releases % 2 === 1,
      busy: () => busy.shift() ?? 0,
      onRun: (r) => runs.push(r),
    });
    m.start();
    m.start(); // a second start changes nothing
    await new Promise((r) => setTimeout(r, 20 * 5 + 60));
    m.stop();
    const stopped = runs.length;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(runs.length, stopped, "no run after stop");
    // start (busy not checked), 0.1, 0.9 (skipped), 0.5, 0.51 (skipped), 0 …
    assert.deepEqual(runs.slice(0, 6), ["released", "nothing", "busy", "released", "busy", "nothing"]);
  });

  it("does nothing with an interval of 0", async () => {
    let calls = 0;
    const m = new MemoryRelease({ intervalMs: 0, release: () => ++calls > 0 });
    m.start();
    await new Promise((r) => setTimeout(r, 30));
    m.stop();
    assert.equal(calls, 0);
  });
});

// Run in a child with --expose-gc: 48 MB of 16 KiB buffers (malloc'd in glibc's heap), every
// eighth kept so the free space sits between chunks in use, where glibc never trims by itself.
const fragment = `
const { readFileSync } = require("node:fs");
const anonMb = () => Number(/RssAnon:\\s+(\\d+)/.exec(readFileSync("/proc/self/status", "utf8"))[1]) / 1024;
const addon = { exports: {} };
process.dlopen(addon, process.argv[1]);
const start = anonMb();
let all = [];
for (let i = 0; i < 3072; i++) all.push(Buffer.allocUnsafeSlow(16 * 1024).fill(i & 255));
const filled = anonMb();
const kept = all.filter((_, i) => i % 8 === 7);
all = undefined;
(async () => {
  for (let i = 0; i < 4; i++) {
    globalThis.gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  const freed = anonMb();
  const released = addon.exports.releaseFreeMemory();
  const after = anonMb();
  process.stdout.write(JSON.stringify({ start, filled, freed, released, after, kept: kept.length }));
})();
`;

describe("releaseFreeMemory (the native addon, glibc)", () => {
  it("gives back the free pages between live chunks, which glibc alone keeps", () => {
    const addon = buildNativeAddon();
    const r = spawnSync(process.execPath, ["--expose-gc", "-e", fragment, addon], {
      encoding: "utf8",
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout) as Record<string, number | boolean>;
    const [filled, freed, after] = [m.filled as number, m.freed as number, m.after as number];
    const msg = JSON.stringify(m);
    assert.ok(filled - (m.start as number) > 40, `the buffers took their memory: ${msg}`);
    assert.ok(freed > filled - 10, `glibc kept the freed pages by itself: ${msg}`);
    assert.equal(m.released, true, msg);
    assert.ok(freed - after > 30, `released: ${msg}`);
  });
});
