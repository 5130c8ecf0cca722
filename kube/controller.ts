// A controller: one work queue of object keys, filled from informer events (mapped to keys by
// each source) and a periodic resync, drained by `concurrency` workers calling a level-based
// reconcile(key). The outcome decides what happens to the key: success forgets its back-off,
// `requeueAfterMs` schedules it, a transient error requeues it with exponential back-off, and a
// PermanentError is logged and left until the next change (no hot loop). Owns the queue, the
// workers, reconcile logs and metrics; does not own reading or writing objects (the reconcile
// function uses informers and ObjectWriter) nor when it runs (manager.ts).
import { randomBytes } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ControllerMetrics, ReconcileOutcome } from "./controller-metrics.ts";
import { errorMessage, isPermanentError } from "./errors.ts";
import type { Informer } from "./informer.ts";
import { objectKey, parseKey } from "./object-key.ts";
import { type BackoffOptions, WorkQueue } from "./work-queue.ts";

export interface ReconcileRequest {
  /** `namespace/name`, or `name` for cluster-scoped objects. */
  key: string;
  namespace?: string;
  name: string;
  /** Short random id of this reconcile, in every log line it writes. */
  reconcileID: string;
  /** Logger with controller, key, reconcileID (and generation when the primary object is cached). */
  logger: Logger;
  /** Aborted when the manager stops for good (leadership lost); a graceful stop lets reconciles finish. */
  signal: AbortSignal;
}

// biome-ignore lint/suspicious/noConfusingVoidType: a reconcile may simply return nothing.
export type ReconcileResult = { requeueAfterMs?: number } | undefined | void;
export type Reconcile = (request: ReconcileRequest) => Promise<ReconcileResult>;

export interface ControllerOptions {
  name: string;
  reconcile: Reconcile;
  /** Workers; one key is never reconciled by two at once (default 1). */
  concurrency?: number;
  /** Re-enqueue every object of every source this often (default: never). */
  resyncMs?: number;
  backoff?: BackoffOptions;
}

export interface ControllerDependencies {
  logger: Logger;
  metrics: ControllerMetrics;
}

export interface WatchOptions {
  /**
   * Events of this source queue their keys this much later, so a burst of events (thousands of
   * pods changing during a rollout) costs one reconcile per interval instead of one per event.
   * For sources whose changes a reconcile reads in bulk and need not see at once (default 0).
   */
  coalesceMs?: number;
}

interface Source {
  informer: Informer<KubernetesObject>;
  map: (obj: KubernetesObject) => string[];
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly sources: Source[] = [];
  private primary: Informer<KubernetesObject> | undefined;
  private readonly log: Logger;
  private readonly abort = new AbortController();
  private workers: Promise<void>[] = [];
  private resyncTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ControllerOptions,
    private readonly deps: ControllerDependencies,
  ) {
    this.name = options.name;
    this.queue = new WorkQueue(options.backoff);
    this.log = deps.logger.child({ controller: options.name });
    deps.metrics.trackQueue(options.name, () => this.queue.length);
  }

  /**
   * Enqueues keys for every add, update and delete in `informer`. Without `map` the object's own
   * key is used and the informer is this controller's primary resource; with it, each object is
   * mapped to the keys to reconcile (an owned object to its owner's key, say).
   */
  watches<T extends KubernetesObject>(
    informer: Informer<T>,
    map?: (obj: T) => string[],
    options: WatchOptions = {},
  ): this {
    const source = informer as unknown as Informer<KubernetesObject>;
    const mapper = (map ?? ((obj: T) => [objectKey(obj)])) as (obj: KubernetesObject) => string[];
    if (!map) this.primary ??= source;
    this.sources.push({ informer: source, map: mapper });
    const delayMs = options.coalesceMs ?? 0;
    const enqueue = (...objs: KubernetesObject[]) => {
      for (const key of new Set(objs.flatMap(mapper))) this.enqueue(key, delayMs);
    };
    source.addEventHandler({
      onAdd: (obj) => enqueue(obj),
      onUpdate: (oldObj, newObj) => enqueue(oldObj, newObj),
      onDelete: (obj) => enqueue(obj),
    });
    return this;
  }

  /** The informers this controller watches (the manager waits for them to sync). */
  get informers(): Informer<KubernetesObject>[] {
    return this.sources.map((s) => s.informer);
  }

  /** Queues `key` now, or in `delayMs` (a key already waiting keeps its earlier time). */
  enqueue(key: string, delayMs = 0): void {
    if (this.queue.isShuttingDown) return;
    this.deps.metrics.workQueueAdds.inc({ name: this.name });
    this.queue.addAfter(key, delayMs);
  }

  start(): void {
    const concurrency = Math.max(1, this.options.concurrency ?? 1);
    for (let i = 0; i < concurrency; i++) this.workers.push(this.work());
    if (this.options.resyncMs) {
      this.resyncTimer = setInterval(() => this.resync(), this.options.resyncMs);
      this.resyncTimer.unref();
    }
    this.log.info({ concurrency, resyncMs: this.options.resyncMs }, "controller started");
  }

  /** Stops taking work and waits for running reconciles; with `abort`, signals them to give up. */
  async stop(abort = false): Promise<void> {
    clearInterval(this.resyncTimer);
    this.queue.shutdown();
    if (abort) this.abort.abort();
    await Promise.all(this.workers);
    this.workers = [];
  }

  private resync(): void {
    for (const { informer, map } of this.sources) {
      for (const obj of informer.list()) for (const key of map(obj)) this.enqueue(key);
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.reconcileKey(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  private async reconcileKey(key: string): Promise<void> {
    const reconcileID = randomBytes(4).toString("hex");
    const generation = this.primary?.get(key)?.metadata?.generation;
    const logger = this.log.child({ key, reconcileID, ...(generation === undefined ? {} : { generation }) });
    const started = performance.now();
    let label: ReconcileOutcome;
    try {
      const result = await this.options.reconcile({
        key,
        ...parseKey(key),
        reconcileID,
        logger,
        signal: this.abort.signal,
      });
      label = this.onSuccess(key, result, logger);
    } catch (err) {
      label = this.onError(key, err, logger);
    }
    const seconds = (performance.now() - started) / 1000;
    this.deps.metrics.reconcileTotal.inc({ controller: this.name, result: label });
    this.deps.metrics.reconcileDuration.observe({ controller: this.name }, seconds);
  }

  private onSuccess(key: string, result: ReconcileResult, logger: Logger): ReconcileOutcome {
    this.queue.forget(key);
    const after = result?.requeueAfterMs;
    if (after !== undefined && after >= 0) {
      this.queue.addAfter(key, after);
      logger.debug({ requeueAfterMs: after }, "reconciled; requeue requested");
      return after === 0 ? "requeue" : "requeue_after";
    }
    logger.debug("reconciled");
    return "success";
  }

  private onError(key: string, err: unknown, logger: Logger): ReconcileOutcome {
    this.deps.metrics.reconcileErrors.inc({ controller: this.name });
    if (isPermanentError(err)) {
      this.queue.forget(key);
      logger.error(
        { reason: err.reason, err: err.message },
        "reconcile failed permanently; waiting for a change",
      );
      return "permanent_error";
    }
    const retryInMs = this.queue.addRateLimited(key);
    logger.warn(
      { err: errorMessage(err), retries: this.queue.retries(key), retryInMs },
      "reconcile failed; requeued",
    );
    return "error";
  }
}
