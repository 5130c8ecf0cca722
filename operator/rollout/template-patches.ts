// Restarting workloads the way `kubectl rollout restart` does: one merge patch of the pod
// template's annotations (trellis.dev/proxy-version and restarted-at), PATCH_CONCURRENCY at a
// time, with expectations so that a reconcile that runs before the informer sees a patch does
// not send it again. restarted-at is when the patch was sent: a step's deadline counts from each
// workload's restart, and a rollback (or a repair) knows exactly which workloads it restarted.
// Owns the patches and the expectations; what to restart is the plans'.
import { ANNOTATIONS, revisionAnnotations } from "../../api/index.ts";
import { ApiError, type Manager, type ReconcileRequest } from "../../kube/index.ts";
import type { WorkloadView } from "./workloads.ts";

/**
 * Template patches in flight at once. One at a time, a wave of 500 workloads took ~80 s of
 * round trips on a loaded API server before the last workload even began to restart.
 */
const PATCH_CONCURRENCY = 16;
/**
 * How long a patch sent is assumed applied while the cache does not show it yet. A patch whose
 * answer was lost may or may not have been applied: sending it again with a new restarted-at
 * would restart the workload twice, so the expectation outlives such a failure until the
 * cache has caught up (or this long has passed and the cache shows it was not applied).
 */
const EXPECTATION_TTL_MS = 60_000;

const WORKLOADS = {
  Deployment: { apiVersion: "apps/v1", kind: "Deployment", plural: "deployments", namespaced: true },
  StatefulSet: { apiVersion: "apps/v1", kind: "StatefulSet", plural: "statefulsets", namespaced: true },
  DaemonSet: { apiVersion: "apps/v1", kind: "DaemonSet", plural: "daemonsets", namespaced: true },
} as const;

export class TemplatePatcher {
  /** Workload key → the version a patch sent asks for, and when it was sent. */
  private readonly expected = new Map<string, { version: string; at: number }>();
  /** Template patches sent, for the scale benchmark and tests. */
  readonly sent: Array<{ workload: string; version: string; at: number }> = [];

  constructor(
    private readonly manager: Manager,
    private readonly fieldManager: string,
  ) {}

  /**
   * A patched workload looks unpatched until the informer sees the change; without this, a
   * reconcile in between would restart it again. Expectations last until the cache catches up
   * (or EXPECTATION_TTL_MS, for a patch that may never have been applied).
   */
  withExpectations(views: WorkloadView[]): WorkloadView[] {
    const present = new Set(views.map((v) => v.key));
    const now = Date.now();
    for (const [key, e] of this.expected)
      if (!present.has(key) || now - e.at > EXPECTATION_TTL_MS) this.expected.delete(key);
    for (const v of views) {
      const expected = this.expected.get(v.key);
      if (expected === undefined) continue;
      if (v.templateVersion === expected.version) this.expected.delete(v.key);
      else {
        v.templateVersion = expected.version;
        v.restartedAt = new Date(expected.at).toISOString();
        v.rolledOut = false; // the cached status is of the template before the patch
      }
    }
    return views;
  }

  /**
   * Patches the workloads PATCH_CONCURRENCY at a time. Every patch is awaited before returning,
   * even after a failure, so that the next reconcile sees all expectations of this one; the
   * first error is then thrown (the reconcile is retried).
   */
  async restartAll(
    restarts: Array<{ workload: WorkloadView; version: string }>,
    request: ReconcileRequest,
  ): Promise<void> {
    let next = 0;
    const errors: unknown[] = [];
    const worker = async () => {
      while (next < restarts.length) {
        const { workload, version } = restarts[next++] as (typeof restarts)[number];
        await this.restart(workload, version, request).catch((err: unknown) => errors.push(err));
      }
    };
    await Promise.all(Array.from({ length: Math.min(PATCH_CONCURRENCY, restarts.length) }, worker));
    if (errors.length > 0) throw errors[0];
  }

  private async restart(w: WorkloadView, version: string, request: ReconcileRequest): Promise<void> {
    const at = Date.now();
    const patch = {
      spec: {
        template: {
          metadata: {
            annotations: {
              ...revisionAnnotations(version),
              [ANNOTATIONS.restartedAt]: new Date(at).toISOString(),
            },
          },
        },
      },
    };
    this.expected.set(w.key, { version, at });
    try {
      await this.manager.client.patch(
        WORKLOADS[w.kind],
        { name: w.name, namespace: w.namespace },
        "merge",
        patch,
        {
          fieldManager: this.fieldManager,
        },
      );
    } catch (err) {
      // The API server answered no: nothing was applied. Otherwise (no answer) it may have been.
      if (err instanceof ApiError) this.expected.delete(w.key);
      throw err;
    }
    this.sent.push({ workload: w.key, version, at });
    request.logger.info({ workload: w.key, version }, "restarting workload onto proxy version");
  }
}
