// Object keys: `namespace/name` for namespaced objects and `name` for cluster-scoped ones, the
// key of informer caches and work queues. Owns the format and nothing else.
import type { KubernetesObject } from "@kubernetes/client-node";

export interface ObjectName {
  namespace?: string;
  name: string;
}

export function objectKey(obj: KubernetesObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`${obj.kind ?? "object"} without metadata.name has no key`);
  const namespace = obj.metadata?.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

export function keyOf(name: ObjectName): string {
  return name.namespace ? `${name.namespace}/${name.name}` : name.name;
}

export function parseKey(key: string): ObjectName {
  const slash = key.indexOf("/");
  if (slash < 0) return { name: key };
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
