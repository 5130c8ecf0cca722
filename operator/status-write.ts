// Writing an object's status only when it changed, by server-side apply on the status
// subresource (so fields the operator stops setting disappear). The comparison ignores key
// order and undefined fields, so a steady reconcile writes nothing. Where two controllers
// share one status (the Mesh controller and the rollout controller), each applies its own
// top-level fields under its own field manager and compares only those.
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { ObjectWriter } from "../kube/index.ts";

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
