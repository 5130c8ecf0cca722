// Finalizers, added and removed with a JSON patch that carries the resourceVersion the
// reconciler read: if the object changed meanwhile the API server refuses it with 409 Conflict
// (retried with back-off) instead of the patch editing a finalizer list it did not see. (A JSON
// patch `test` of the resourceVersion would also refuse it, but as an indistinct 422.)
// Owns the patches; does not own the clean-up a finalizer guards (the controller's job).
import type { KubernetesObject } from "@kubernetes/client-node";
import { type JsonPatchOperation, type ObjectWriter, refOf } from "./object-writer.ts";

export function hasFinalizer(obj: KubernetesObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

export function isBeingDeleted(obj: KubernetesObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/** Adds `finalizer` unless present; returns the live object (or `obj` when nothing was needed). */
export async function addFinalizer<T extends KubernetesObject>(
  writer: ObjectWriter,
  obj: T,
  finalizer: string,
): Promise<T> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const ops: JsonPatchOperation[] = [resourceVersionPrecondition(obj)];
  if (obj.metadata?.finalizers) ops.push({ op: "add", path: "/metadata/finalizers/-", value: finalizer });
  else ops.push({ op: "add", path: "/metadata/finalizers", value: [finalizer] });
  return writer.jsonPatch<T>(refOf(obj), ops);
}

/** Removes `finalizer` if present; returns the live object (or `obj` when nothing was needed). */
export async function removeFinalizer<T extends KubernetesObject>(
  writer: ObjectWriter,
  obj: T,
  finalizer: string,
): Promise<T> {
  const index = obj.metadata?.finalizers?.indexOf(finalizer) ?? -1;
  if (index < 0) return obj;
  // The resourceVersion precondition guarantees the list, and so the index, is the one read.
  return writer.jsonPatch<T>(refOf(obj), [
    resourceVersionPrecondition(obj),
    { op: "remove", path: `/metadata/finalizers/${index}` },
  ]);
}

function resourceVersionPrecondition(obj: KubernetesObject): JsonPatchOperation {
  const rv = obj.metadata?.resourceVersion;
  if (!rv) throw new Error("a finalizer patch needs the resourceVersion that was read");
  return { op: "replace", path: "/metadata/resourceVersion", value: rv };
}
