// The metrics every Trellis operator exports, in one place so that names stay stable:
// reconciles by controller and result, reconcile errors and duration, work-queue depth and
// adds, informer lists and watch restarts, leadership, and the process' resident memory.
// Owns names, help texts and labels; the values are written by controller.ts, informer.ts and
// leader-election.ts.
import { Registry } from "./metrics.ts";

export type ReconcileOutcome = "success" | "requeue" | "requeue_after" | "error" | "permanent_error";

export class ControllerMetrics {
  readonly registry: Registry;
  readonly reconcileTotal;
  readonly reconcileErrors;
  readonly reconcileDuration;
  readonly workQueueDepth;
  readonly workQueueAdds;
  readonly informerLists;
  readonly informerWatchErrors;
  readonly leader;
  readonly apiRequests;
  private readonly queues = new Map<string, () => number>();

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    this.reconcileTotal = registry.counter(
      "trellis_controller_reconcile_total",
      "Reconciles by controller and result.",
    );
    this.apiRequests = registry.counter(
      "trellis_kube_api_requests_total",
      "Requests sent to the Kubernetes API (watches excluded), by verb.",
    );
    this.reconcileErrors = registry.counter(
      "trellis_controller_reconcile_errors_total",
      "Reconciles that failed, by controller.",
    );
    this.reconcileDuration = registry.histogram(
      "trellis_controller_reconcile_time_seconds",
      "Time spent in reconcile, by controller.",
    );
    this.workQueueDepth = registry.gauge(
      "trellis_workqueue_depth",
      "Keys waiting in the work queue, by name.",
    );
    this.workQueueDepth.collect(() =>
      [...this.queues].map(([name, depth]) => ({ labels: { name }, value: depth() })),
    );
    this.workQueueAdds = registry.counter(
      "trellis_workqueue_adds_total",
      "Keys added to the work queue, by name.",
    );
    this.informerLists = registry.counter(
      "trellis_informer_lists_total",
      "Full lists by informer resource (the first one, and relists after 410 Gone or errors).",
    );
    this.informerWatchErrors = registry.counter(
      "trellis_informer_watch_errors_total",
      "Watches that ended with an error, by informer resource.",
    );
    this.leader = registry.gauge(
      "trellis_leader_election_master_status",
      "1 while this replica holds the lease.",
    );
    const rss = registry.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
    rss.collect(() => [{ labels: {}, value: process.memoryUsage.rss() }]);
  }

  trackQueue(name: string, depth: () => number): void {
    this.queues.set(name, depth);
  }
}
