// Writing an object's status only when it changed, by server-side apply on the status
// subresource (so fields the operator stops setting disappear). The comparison ignores key
// order and undefined fields, so a steady reconcile writes nothing.
import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import type { Manager } from "../kube/index.ts";

export function sameJson(a: unknown, b: unknown): boolean {
  const plain = (v: unknown) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));
  return isDeepStrictEqual(plain(a), plain(b));
}

/** Applies `status` unless it equals the object's current status; true when written. */
export async function writeStatusIfChanged(
  manager: Manager,
  obj: KubernetesObject & { status?: unknown },
  status: object,
): Promise<boolean> {
  if (sameJson(status, obj.status)) return false;
  await manager.writer.applyStatus({
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
