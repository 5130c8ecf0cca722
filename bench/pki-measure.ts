// Timing harness for the pki benchmark: runs one operation repeatedly for a fixed time after a
// short warm-up and reports operations per wall-clock second and per CPU-second of the process.
// On a shared machine the wall-clock rate depends on what else runs; operations per CPU-second is
// the per-core figure (CPU/wall above 1.0 would mean work spilled onto other threads, e.g.
// WebCrypto's thread pool — the CPU-second rate still charges it). Also formats the result table.

export interface Sample {
  perWallSecond: number;
  perCpuSecond: number;
  /** Process CPU time divided by wall time while measuring: 1.0 is one core fully used. */
  cpuPerWall: number;
}

const WARM_UP_MS = 200;

function finish(count: number, startWall: number, startCpu: NodeJS.CpuUsage): Sample {
  const wallMs = performance.now() - startWall;
  const cpu = process.cpuUsage(startCpu);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return {
    perWallSecond: (count * 1000) / wallMs,
    perCpuSecond: (count * 1000) / cpuMs,
    cpuPerWall: cpuMs / wallMs,
  };
}

export function measureSync(op: (i: number) => void, seconds: number): Sample {
  const warmUntil = performance.now() + WARM_UP_MS;
  for (let i = 0; performance.now() < warmUntil; i++) op(i);
  const startCpu = process.cpuUsage();
  const startWall = performance.now();
  const end = startWall + seconds * 1000;
  let count = 0;
  while (performance.now() < end) {
    for (let k = 0; k < 10; k++) op(count++);
  }
  return finish(count, startWall, startCpu);
}

export async function measureAsync(op: (i: number) => Promise<void>, seconds: number): Promise<Sample> {
  const warmUntil = performance.now() + WARM_UP_MS;
  for (let i = 0; performance.now() < warmUntil; i++) await op(i);
  const startCpu = process.cpuUsage();
  const startWall = performance.now();
  const end = startWall + seconds * 1000;
  let count = 0;
  while (performance.now() < end) await op(count++);
  return finish(count, startWall, startCpu);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** A plain-text table with right-aligned numeric columns. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}

/**
 * Runs several operations interleaved in batches of 20 and returns CPU microseconds per operation
 * for each. Interleaving at this grain makes them share the machine's noise and the CPU caches the
 * way they do inside one certificate issuance, which separate timed runs do not.
 */
export function interleavedCpuMicros(
  ops: Record<string, (i: number) => unknown>,
  seconds: number,
): Record<string, number> {
  const cpu: Record<string, number> = {};
  const count: Record<string, number> = {};
  const end = performance.now() + seconds * 1000;
  for (let i = 0; performance.now() < end; ) {
    for (const [name, op] of Object.entries(ops)) {
      const start = process.cpuUsage();
      for (let k = 0; k < 20; k++) op(i++);
      const used = process.cpuUsage(start);
      cpu[name] = (cpu[name] ?? 0) + used.user + used.system;
      count[name] = (count[name] ?? 0) + 20;
    }
  }
  return Object.fromEntries(Object.keys(ops).map((name) => [name, (cpu[name] ?? 0) / (count[name] ?? 1)]));
}
