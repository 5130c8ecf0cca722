/**
 * Gives the memory the C allocator keeps after it is freed back to the kernel, while the proxy
 * is not busy.
 *
 * Why: on Node 24 every socket read allocates a 64 KiB buffer and copies out of it, V8 frees the
 * small ArrayBuffers it leaves some collections later, and OpenSSL frees each connection's record
 * buffers when idle (Node asks for SSL_MODE_RELEASE_BUFFERS). Those frees land between chunks
 * still in use, and glibc only ever returns the top of its heap: a plain-hop proxy held 5–7 MB
 * of free pages inside it after a run at 500 req/s (docs/node-runtime.md). malloc_trim(0)
 * returns every whole free page (native-addon.ts); pages used again are faulted back in.
 *
 * When: once at start (start-up's garbage), then every `intervalMs`, skipped when the event loop
 * was busy for more than `maxBusy` of the interval — under saturation the pages would be reused
 * at once, and the trim itself (0.1–0.4 ms) would wait on the allocator's lock. Like Go's
 * scavenger or Envoy's heap shrinker: memory the process does not use is not kept.
 *
 * Owns: the schedule. Does not own the release itself (the addon) or the metric's name.
 */
import { performance } from "node:perf_hooks";

export type ReleaseResult = "released" | "nothing" | "busy";

export interface MemoryReleaseOptions {
  /** How often to release; 0 turns it off. */
  intervalMs: number;
  /** Returns the allocator's free pages to the kernel; true when there were some. */
  release: () => boolean;
  /** Skip a run when the event loop was busy for more than this share of the interval. */
  maxBusy?: number;
  /** The event loop's busy share since the previous call (0–1); performance.eventLoopUtilization by default. */
  busy?: () => number;
  /** Called after each run. */
  onRun?: (result: ReleaseResult) => void;
}

export class MemoryRelease {
  private timer: NodeJS.Timeout | undefined;
  private readonly busy: () => number;
  private readonly maxBusy: number;

  constructor(private readonly options: MemoryReleaseOptions) {
    this.maxBusy = options.maxBusy ?? 0.5;
    this.busy = options.busy ?? eventLoopBusy();
  }

  /** Releases once now, then every interval; does nothing when the interval is 0. */
  start(): void {
    if (this.options.intervalMs <= 0 || this.timer) return;
    this.run(false);
    this.timer = setInterval(() => this.run(true), this.options.intervalMs);
    // Never what keeps the process alive.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private run(checkBusy: boolean): void {
    // Read every time, so each interval's share is its own.
    const busy = this.busy();
    const result: ReleaseResult =
      checkBusy && busy > this.maxBusy ? "busy" : this.options.release() ? "released" : "nothing";
    this.options.onRun?.(result);
  }
}

/** The event loop's busy share since the previous call. */
function eventLoopBusy(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const share = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return share;
  };
}
