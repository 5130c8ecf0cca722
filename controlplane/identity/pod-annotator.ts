// Writes a proxy's trust report onto its pod: one JSON merge patch of exactly the two report
// annotations, with the pod's uid in the patch as a precondition (the API server refuses to
// change a uid, so a pod deleted and re-created under the same name is never written). What was
// last written per pod is remembered for a while, so a proxy that re-reports an unchanged state
// (every renewal) costs no API call; the API server itself also drops a no-op patch.
// Owns the write and its error mapping; does not own what a report may say (proxy-report.ts).
import { ApiError } from "../../kube/index.ts";
import { CertifyError } from "./certify-errors.ts";
import type { ReportedPod } from "./proxy-report.ts";
import { ExpiringLru } from "./token-cache.ts";

/** Sends a merge patch to the pod; rejects with the API server's error. */
export type PatchPod = (pod: ReportedPod, patch: object) => Promise<void>;

export type ReportOutcome = "Patched" | "Unchanged";

/** Forget a written state after this long, so an annotation edited by hand is corrected. */
const REMEMBER_MS = 10 * 60_000;

export class PodAnnotator {
  private readonly written: ExpiringLru<string>;

  constructor(
    private readonly patch: PatchPod,
    entries: number,
    private readonly now: () => number = Date.now,
  ) {
    this.written = new ExpiringLru(entries);
  }

  async annotate(pod: ReportedPod, annotations: Record<string, string | null>): Promise<ReportOutcome> {
    const state = JSON.stringify(annotations);
    if (this.written.get(pod.uid, this.now()) === state) return "Unchanged";
    try {
      await this.patch(pod, { metadata: { uid: pod.uid, annotations } });
    } catch (err) {
      this.written.delete(pod.uid);
      throw patchError(err, pod);
    }
    this.written.set(pod.uid, state, this.now() + REMEMBER_MS);
    return "Patched";
  }
}

function patchError(err: unknown, pod: ReportedPod): CertifyError {
  const where = `pod ${pod.namespace}/${pod.name}`;
  if (err instanceof ApiError && err.statusCode === 404)
    return new CertifyError("PodNotFound", `${where} no longer exists`);
  if (err instanceof ApiError && (err.statusCode === 409 || err.statusCode === 422))
    return new CertifyError(
      "PodReplaced",
      `${where} is not the pod the token is bound to (uid ${pod.uid}); it was re-created`,
    );
  const why = err instanceof Error ? err.message.slice(0, 200) : "unknown error";
  return new CertifyError("PodPatchFailed", `could not annotate ${where} (${why}); retry later`);
}
