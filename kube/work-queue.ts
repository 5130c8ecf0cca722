// A de-duplicating, rate-limited work queue of object keys, with client-go's semantics: a key
// is in the queue at most once; a key being processed is never handed out twice at the same time
// (adding it again marks it dirty and it is re-queued when `done` is called); `addRateLimited`
// delays a key by its own exponential back-off, reset by `forget`. Owns ordering, de-duplication
// and delays; does not own what a key means or how it is processed (controller.ts).

export interface BackoffOptions {
  /** First delay after a failure (default 5 ms). */
  baseMs?: number;
  /** Longest delay (default 5 min). */
  maxMs?: number;
}

/** Per-key exponential back-off: baseMs · 2^failures, capped at maxMs. */
export class ExponentialBackoff {
  private readonly failures = new Map<string, number>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 5;
    this.maxMs = options.maxMs ?? 5 * 60_000;
  }

  /** The delay for the next retry of `key`, counting this failure. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** Math.min(n, 52));
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly waiting = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly getters: Array<(key: string | undefined) => void> = [];
  private readonly backoff: ExponentialBackoff;
  private shuttingDown = false;
  private wakeScheduled = false;

  constructor(options: BackoffOptions = {}) {
    this.backoff = new ExponentialBackoff(options);
  }

  /** Keys waiting to be processed (not counting those being processed or delayed). */
  get length(): number {
    return this.queue.length;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.wakeGetters();
  }

  /** Adds `key` after `ms`; of several pending delays for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.waiting.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { at, timer });
  }

  /** Adds `key` after its back-off delay, which doubles with every call until `forget`. */
  addRateLimited(key: string): number {
    const delay = this.backoff.when(key);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the back-off of `key` (after a success, or a permanent failure). */
  forget(key: string): void {
    this.backoff.forget(key);
  }

  retries(key: string): number {
    return this.backoff.retries(key);
  }

  /** The next key to process; resolves with undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.handOut(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks `key` as processed; if it was added meanwhile, it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) {
      this.dirty.delete(key);
      this.add(key);
    }
  }

  /** Stops handing out keys: pending getters get undefined, delayed adds are dropped. */
  shutdown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    this.queue.length = 0;
    for (const getter of this.getters.splice(0)) getter(undefined);
  }

  /**
   * Hands keys to waiting workers in a microtask rather than inside add(), so that several adds of
   * one key in the same tick (an update event maps old and new object) still fold into one.
   */
  private wakeGetters(): void {
    if (this.wakeScheduled || this.getters.length === 0) return;
    this.wakeScheduled = true;
    queueMicrotask(() => {
      this.wakeScheduled = false;
      while (this.getters.length > 0 && this.queue.length > 0) {
        const key = this.queue.shift()!;
        this.handOut(key);
        this.getters.shift()!(key);
      }
    });
  }

  private handOut(key: string): void {
    this.dirty.delete(key);
    this.processing.add(key);
  }
}
