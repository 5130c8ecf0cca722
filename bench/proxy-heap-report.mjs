// Preloaded into the benchmark's Node processes (`--import`) when BENCH_HEAP_REPORT=1: on
// SIGUSR2 it writes where the process's memory is — V8's heap spaces (physical), external and
// ArrayBuffer memory, and RSS split into anonymous and file-backed — to
// $BENCH_HEAP_DIR/<pid>.json. Never part of the proxy or its image.
import { readFileSync, writeFileSync } from "node:fs";
import v8 from "node:v8";

const mb = (bytes) => bytes / 1048576;

process.on("SIGUSR2", () => {
  const status = readFileSync("/proc/self/status", "utf8");
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024;
  const spaces = Object.fromEntries(
    v8.getHeapSpaceStatistics().map((s) => [s.space_name, mb(s.physical_space_size)]),
  );
  const memory = process.memoryUsage();
  const report = {
    rss: kb("VmRSS"),
    anon: kb("RssAnon"),
    file: kb("RssFile"),
    heap: mb(v8.getHeapStatistics().total_physical_size),
    spaces,
    external: mb(memory.external),
    arrayBuffers: mb(memory.arrayBuffers),
    threads: Number(/Threads:\s+(\d+)/.exec(status)?.[1] ?? 0),
  };
  writeFileSync(`${process.env.BENCH_HEAP_DIR}/${process.pid}.json`, JSON.stringify(report));
});
