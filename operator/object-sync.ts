// Makes a set of owned objects exist exactly as rendered: server-side apply of what differs,
// deletion of what is owned but no longer desired. Writes nothing when the cluster already
// matches, so a steady-state reconcile costs no API writes.
//
// "Differs" is judged two ways: the hash of the desired object (an annotation written with it,
// which catches fields Trellis stopped setting) and a subset check of desired against live
// (which catches someone editing a field Trellis owns). Only objects carrying the owner's UID in
// their ownerReferences are ever deleted: nothing Trellis does not own is touched.
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { type ObjectWriter, refOf } from "../kube/object-writer.ts";
import { isNotFound } from "../kube/rest-client.ts";

export const APPLIED_HASH = "trellis.dev/applied-hash";

export interface LiveObjects {
  /** The live object with this identity, from an informer cache. */
  get(ref: {
    apiVersion: string;
    kind: string;
    name: string;
    namespace?: string;
  }): KubernetesObject | undefined;
  /** Every live object of the kinds this sync manages that carries the owner's labels. */
  owned(): KubernetesObject[];
}

export interface SyncResult {
  applied: string[];
  deleted: string[];
}

export function identity(o: {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}): string {
  const group = (o.apiVersion ?? "").includes("/") ? (o.apiVersion ?? "").split("/")[0] : "core";
  const ns = o.metadata?.namespace ? `${o.metadata.namespace}/` : "";
  return `${o.kind}.${group}:${ns}${o.metadata?.name}`;
}

export function hashOf(obj: KubernetesObject): string {
  return createHash("sha256").update(JSON.stringify(obj)).digest("hex").slice(0, 16);
}

/** Whether every field set in `desired` has the same value in `live` (arrays: same length, element-wise). */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== "object") {
    return desired === live || (typeof live !== "object" && String(desired) === String(live));
  }
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) && live.length === desired.length && desired.every((d, i) => isSubset(d, live[i]))
    );
  }
  if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
  const l = live as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([k, v]) => isSubset(v, l[k]));
}

/** The desired object with its hash annotation, as it is applied. */
export function withHash<T extends KubernetesObject>(desired: T): T {
  const hash = hashOf(desired);
  return {
    ...desired,
    metadata: {
      ...desired.metadata,
      annotations: { ...desired.metadata?.annotations, [APPLIED_HASH]: hash },
    },
  };
}

export function needsApply(desired: KubernetesObject, live: KubernetesObject | undefined): boolean {
  if (!live) return true;
  const stamped = withHash(desired);
  return (
    live.metadata?.annotations?.[APPLIED_HASH] !== stamped.metadata?.annotations?.[APPLIED_HASH] ||
    !isSubset(stamped, live)
  );
}

export function isOwnedBy(obj: KubernetesObject, ownerUid: string): boolean {
  return obj.metadata?.ownerReferences?.some((r) => r.uid === ownerUid) ?? false;
}

export async function syncObjects(opts: {
  desired: KubernetesObject[];
  live: LiveObjects;
  writer: ObjectWriter;
  ownerUid: string;
}): Promise<SyncResult> {
  const result: SyncResult = { applied: [], deleted: [] };
  for (const desired of opts.desired) {
    if (!needsApply(desired, opts.live.get(refOf(desired)))) continue;
    await opts.writer.apply(withHash(desired));
    result.applied.push(identity(desired));
  }
  const wanted = new Set(opts.desired.map(identity));
  for (const live of opts.live.owned()) {
    if (wanted.has(identity(live)) || !isOwnedBy(live, opts.ownerUid) || live.metadata?.deletionTimestamp)
      continue;
    await deleteIgnoringMissing(opts.writer, live);
    result.deleted.push(identity(live));
  }
  return result;
}

export async function deleteIgnoringMissing(writer: ObjectWriter, obj: KubernetesObject): Promise<void> {
  try {
    await writer.delete(refOf(obj));
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
