// A shared informer: a cache of one resource type (optionally one namespace and a label
// selector), filled by a paged list and kept current by a watch from the list's
// resourceVersion, with bookmarks. When the watch's resourceVersion is gone (410) it relists and
// turns the difference into add/update/delete events, so no change is lost across API server
// restarts or compactions; any other failure is retried with back-off, forever. Owns the cache
// (keyed `namespace/name`, or `name` for cluster-scoped objects) and event delivery; does not
// own what handlers do with events (controller.ts) or the HTTP client (rest-client.ts, client-node's Watch).
// What is cached is a view: managedFields are always dropped (no reader uses them, and they are
// often a third of an object), and a spec's `transform` may keep only the fields its readers
// read — at 10,000 pods the difference between ~100 MB of cache and ~10 MB.
import { setTimeout as sleep } from "node:timers/promises";
import { type KubeConfig, type KubernetesObject, Watch } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ControllerMetrics } from "./controller-metrics.ts";
import { objectKey } from "./object-key.ts";
import { isGone, type KubeClient, type ResourceType, resourcePath } from "./rest-client.ts";

export interface InformerSpec extends ResourceType {
  /** Watch one namespace only (namespaced resources). */
  namespace?: string;
  labelSelector?: string;
  /**
   * Reduces each object to what this informer's readers read, before it is cached and handed to
   * handlers. Pure; it must keep metadata.name, namespace and resourceVersion. The function is part
   * of the informer's identity (Manager shares an informer only between specs with the same one).
   */
  transform?: (obj: KubernetesObject) => KubernetesObject;
}

export interface InformerOptions {
  logger: Logger;
  metrics?: ControllerMetrics;
  /** List page size (default 500). */
  pageSize?: number;
  /** Back-off after a failed list or watch: first delay (default 200 ms) and longest (default 30 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Server-side watch timeout; the actual one is random in [t, 2t) (default 300 s) to spread relists. */
  watchTimeoutSeconds?: number;
}

export interface EventHandler<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  onDelete?(obj: T): void;
}

/** Counts of what the informer did, for tests and diagnostics. */
export interface InformerStats {
  lists: number;
  watches: number;
  watchErrors: number;
  gone: number;
}

/** Consecutive failed watches (errors other than 410) after which the informer relists. */
const RELIST_AFTER_WATCH_FAILURES = 5;

interface WatchEnd {
  gone: boolean;
  error?: unknown;
  /** The API server answered with an error (as opposed to being unreachable). */
  refused?: boolean;
  events: number;
}

interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

export class Informer<T extends KubernetesObject> {
  readonly stats: InformerStats = { lists: 0, watches: 0, watchErrors: 0, gone: 0 };
  private readonly store = new Map<string, T>();
  private readonly handlers: EventHandler<T>[] = [];
  private readonly watch: Watch;
  private readonly log: Logger;
  private readonly stopSignal = new AbortController();
  private abortWatch: AbortController | undefined;
  private resourceVersion: string | undefined;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    kubeConfig: KubeConfig,
    readonly spec: InformerSpec,
    private readonly options: InformerOptions,
  ) {
    this.watch = new Watch(kubeConfig);
    this.log = options.logger.child({ informer: describeSpec(spec) });
  }

  /** Registers handlers; if the cache is already synced, every cached object is replayed as an add. */
  addEventHandler(handler: EventHandler<T>): void {
    this.handlers.push(handler);
    if (this.synced) for (const obj of this.store.values()) this.safely(() => handler.onAdd?.(obj));
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves once the first list is in the cache (or the informer is stopped). */
  waitForSync(): Promise<void> {
    if (this.synced || this.stopSignal.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  /** The cached object for `namespace/name` (or `name`). Do not modify it: it is shared. */
  get(key: string): T | undefined {
    return this.store.get(key);
  }

  /** Every cached object, or those of one namespace. */
  list(namespace?: string): T[] {
    const all = [...this.store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  /** The resourceVersion the cache is current to. */
  get lastSyncResourceVersion(): string | undefined {
    return this.resourceVersion;
  }

  start(): void {
    if (this.running) return;
    this.running = this.run().catch((err: unknown) =>
      this.log.error({ err }, "informer loop ended unexpectedly"),
    );
  }

  async stop(): Promise<void> {
    this.stopSignal.abort();
    this.abortWatch?.abort();
    for (const wake of this.syncWaiters.splice(0)) wake();
    await this.running;
  }

  private get stopped(): boolean {
    return this.stopSignal.signal.aborted;
  }

  private async run(): Promise<void> {
    let failures = 0;
    let watchFailures = 0;
    while (!this.stopped) {
      try {
        if (this.resourceVersion === undefined) {
          this.resourceVersion = await this.listAndReplace();
          failures = 0;
          watchFailures = 0;
        }
        const end = await this.watchOnce(this.resourceVersion);
        if (this.stopped) break;
        if (end.gone) {
          this.stats.gone++;
          this.log.info(
            { resourceVersion: this.resourceVersion },
            "watch resourceVersion gone (410), relisting",
          );
          this.resourceVersion = undefined;
          continue;
        }
        if (end.error !== undefined) {
          this.recordWatchError(end.error);
          // A server that keeps refusing this resourceVersion (not with 410) gets a fresh list;
          // an unreachable one does not (the watch resumes where it was, as client-go's does).
          if (end.refused && ++watchFailures >= RELIST_AFTER_WATCH_FAILURES) this.resourceVersion = undefined;
        } else if (end.events > 0) {
          failures = 0;
          watchFailures = 0;
          continue;
        }
      } catch (err) {
        if (this.stopped) break;
        if (isGone(err)) this.resourceVersion = undefined;
        this.log.warn({ err: String(err) }, "list failed, retrying");
      }
      await this.backoff(failures++);
    }
  }

  private recordWatchError(error: unknown): void {
    this.stats.watchErrors++;
    this.options.metrics?.informerWatchErrors.inc({ resource: describeSpec(this.spec) });
    this.log.warn({ err: String(error), resourceVersion: this.resourceVersion }, "watch ended with an error");
  }

  private async backoff(failures: number): Promise<void> {
    const base = this.options.backoffBaseMs ?? 200;
    const max = this.options.backoffMaxMs ?? 30_000;
    const delay = Math.min(max, base * 2 ** Math.min(failures, 30));
    const jittered = delay * (0.8 + Math.random() * 0.4);
    await sleep(jittered, undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }

  /** Lists every page and replaces the cache, emitting the differences. Returns the list's resourceVersion. */
  private async listAndReplace(): Promise<string> {
    const items: T[] = [];
    let next: string | undefined;
    let resourceVersion = "";
    do {
      const page = await this.client.list<T>(this.spec, {
        namespace: this.spec.namespace,
        labelSelector: this.spec.labelSelector,
        limit: this.options.pageSize ?? 500,
        continue: next,
        signal: this.stopSignal.signal,
      });
      // Transform page by page: the full objects of a large list are never all held at once.
      for (const item of page.items) items.push(this.view(item));
      next = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? "";
    } while (next);
    if (this.stopped) return resourceVersion;
    this.stats.lists++;
    this.options.metrics?.informerLists.inc({ resource: describeSpec(this.spec) });
    this.replace(items);
    this.log.debug({ count: items.length, resourceVersion }, "listed");
    if (!this.synced) {
      this.synced = true;
      for (const wake of this.syncWaiters.splice(0)) wake();
    }
    return resourceVersion;
  }

  private replace(items: T[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      const key = objectKey(item);
      seen.add(key);
      this.upsert(key, item);
    }
    for (const [key, old] of this.store) {
      if (seen.has(key)) continue;
      this.store.delete(key);
      this.emit((h) => h.onDelete?.(old));
    }
  }

  private upsert(key: string, obj: T): void {
    const old = this.store.get(key);
    this.store.set(key, obj);
    if (!old) this.emit((h) => h.onAdd?.(obj));
    else if (old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    // A change only in fields the transform dropped is no change to this informer's readers.
    else if (!this.spec.transform || !sameBesidesVersion(old, obj)) this.emit((h) => h.onUpdate?.(old, obj));
  }

  private watchOnce(resourceVersion: string): Promise<WatchEnd> {
    this.stats.watches++;
    const base = this.options.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.floor(base * (1 + Math.random()));
    const query = {
      resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds,
      labelSelector: this.spec.labelSelector,
    };
    const path = resourcePath(this.spec, this.spec.namespace);
    return new Promise((resolve) => {
      const end: WatchEnd = { gone: false, events: 0 };
      // The server ends the watch after timeoutSeconds; a connection silent for longer is dead.
      let watchdog: NodeJS.Timeout | undefined;
      const armWatchdog = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => this.abortWatch?.abort(), (timeoutSeconds + 30) * 1000);
      };
      const onEvent = (phase: string, obj: T | WatchStatus) => {
        armWatchdog();
        end.events++;
        if (phase === "ERROR") {
          const status = obj as WatchStatus;
          if (status.code === 410) end.gone = true;
          else {
            end.error = new Error(`watch error ${status.code} ${status.reason}: ${status.message}`);
            end.refused = true;
          }
          return;
        }
        this.handleWatchEvent(phase, obj as T);
      };
      const onDone = (err: unknown) => {
        clearTimeout(watchdog);
        const statusCode = httpStatusOf(err);
        if (statusCode === 410) end.gone = true;
        else if (err && !this.stopped) {
          end.error = err;
          end.refused ||= statusCode !== undefined;
        }
        resolve(end);
      };
      armWatchdog();
      this.watch.watch(path, query, onEvent, onDone).then((abort) => {
        this.abortWatch = abort;
        if (this.stopped) abort.abort();
      }, onDone);
    });
  }

  private handleWatchEvent(phase: string, obj: T): void {
    const rv = obj.metadata?.resourceVersion;
    if (phase === "BOOKMARK") {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const view = this.view(obj);
    const key = objectKey(view);
    if (phase === "ADDED" || phase === "MODIFIED") this.upsert(key, view);
    else if (phase === "DELETED") {
      const old = this.store.get(key);
      this.store.delete(key);
      this.emit((h) => h.onDelete?.(old ?? view));
    }
    if (rv) this.resourceVersion = rv;
  }

  /** What the cache keeps of an object from the API server. */
  private view(obj: T): T {
    withTypeMeta(obj, this.spec);
    if (obj.metadata?.managedFields) delete obj.metadata.managedFields;
    return this.spec.transform ? (this.spec.transform(obj) as T) : obj;
  }

  private emit(call: (handler: EventHandler<T>) => void): void {
    for (const handler of this.handlers) this.safely(() => call(handler));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err }, "informer event handler threw");
    }
  }
}

/** The HTTP status client-node's Watch attaches when the server answered the watch with an error. */
function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { statusCode?: unknown }).statusCode;
  return typeof code === "number" ? code : undefined;
}

function sameBesidesVersion(a: KubernetesObject, b: KubernetesObject): boolean {
  const unversioned = (o: KubernetesObject) =>
    JSON.stringify({ ...o, metadata: { ...o.metadata, resourceVersion: undefined } });
  return unversioned(a) === unversioned(b);
}

/** List items come without apiVersion and kind; put them back so cached objects are complete. */
function withTypeMeta<T extends KubernetesObject>(obj: T, spec: ResourceType): void {
  obj.apiVersion ??= spec.apiVersion;
  obj.kind ??= spec.kind;
}

export function describeSpec(spec: InformerSpec): string {
  const ns = spec.namespace ? ` in ${spec.namespace}` : "";
  const selector = spec.labelSelector ? ` (${spec.labelSelector})` : "";
  return `${spec.plural}.${spec.apiVersion}${ns}${selector}`;
}
