// Writing an object's status only when it changed, by server-side apply on the status
// subresource (so fields the operator stops setting disappear). The comparison ignores key
// order and undefined fields, so a steady reconcile writes nothing. Where two controllers
// share one status (the Mesh controller and the rollout controller), each applies its own
// top-level fields under its own field manager and compares only those.
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { isConflict, type ObjectWriter } from "../kube/index.ts";

export function sameJson(a: unknown, b: unknown): boolean {
  const plain = (v: unknown) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  return isDeepStrictEqual(plain(a), plain(b));
}

function pick(status: unknown, keys: readonly string[] | undefined): unknown {
  if (!keys || status === null || typeof status !== "object") return status;
  const s = status as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => s[k] !== undefined).map((k) => [k, s[k]]));
}

/** Applies `status` unless it equals the object's current status (on `keys`, when given); true when written. */
export async function writeStatusIfChanged(
  writer: ObjectWriter,
  obj: KubernetesObject & { status?: unknown },
  status: object,
  keys?: readonly string[],
): Promise<boolean> {
  if (sameJson(pick(status, keys), pick(obj.status, keys))) return false;
  await writer.applyStatus({
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: obj.metadata?.name,
      ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
    },
    status,
  } as KubernetesObject);
  return true;
}

export type TransitionWrite = "unchanged" | "written" | "conflict";

/**
 * Status that records transitions, each announced by an Event. The decision behind such a write
 * was made from a cached object; if the cache was stale (a reconcile that ran before the
 * informer saw this controller's last write, or another writer's), writing it would record the
 * same transition twice and announce it twice. So the write carries the cached resourceVersion
 * as a precondition (409 Conflict if the object moved on), and a reconcile whose cached object
 * is still the one this process's last write replaced waits for the cache instead of deciding.
 * Events follow only a successful write: whether a transition was announced is read from the
 * persisted status, by this process or its successor, never from memory. (An operator killed
 * between the write and the Event loses that Event; the status still says what happened.)
 */
export class TransitionWriter {
  /** key → resourceVersion of the object our last write replaced. */
  private readonly replaced = new Map<string, string>();

  constructor(private readonly writer: ObjectWriter) {}

  /** The cached object is the one this process's last write replaced: a decision on it is stale. */
  isStale(key: string, cached: KubernetesObject): boolean {
    const rv = this.replaced.get(key);
    if (rv === undefined) return false;
    if (cached.metadata?.resourceVersion === rv) return true;
    this.replaced.delete(key);
    return false;
  }

  /** Applies `status` (on `keys`) unless unchanged, on the precondition that `obj` is still current. */
  async write(
    key: string,
    obj: KubernetesObject & { status?: unknown },
    status: object,
    keys: readonly string[],
  ): Promise<TransitionWrite> {
    if (sameJson(pick(status, keys), pick(obj.status, keys))) return "unchanged";
    const before = obj.metadata?.resourceVersion;
    try {
      const live = await this.writer.applyStatus({
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        metadata: {
          name: obj.metadata?.name,
          ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
          ...(before ? { resourceVersion: before } : {}),
        },
        status,
      } as KubernetesObject);
      const after = live.metadata?.resourceVersion;
      if (before && after && after !== before) this.replaced.set(key, before);
      return "written";
    } catch (err) {
      if (isConflict(err)) return "conflict";
      throw err;
    }
  }
}
