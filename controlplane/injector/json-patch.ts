// Applies the RFC 6902 operations the injector emits (add, replace) to a JSON value, the way
// the API server does with a webhook's patch. Used to show the patched pod and to check
// idempotence; the API server applies the real patches.
import type { JsonPatchOperation } from "./inject.ts";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function unescapePointer(token: string): string {
  return token.replaceAll("~1", "/").replaceAll("~0", "~");
}

export function applyJsonPatch<T>(doc: T, ops: JsonPatchOperation[]): T {
  const root = structuredClone(doc) as unknown as Json;
  for (const op of ops) {
    const tokens = op.path.split("/").slice(1).map(unescapePointer);
    const last = tokens.pop();
    if (last === undefined) throw new Error(`patch path ${op.path} is empty`);
    let parent: Json = root;
    for (const t of tokens) {
      const next: Json | undefined = Array.isArray(parent)
        ? parent[Number(t)]
        : (parent as { [k: string]: Json })[t];
      if (next === undefined || next === null || typeof next !== "object")
        throw new Error(`patch path ${op.path} does not exist`);
      parent = next;
    }
    const value = structuredClone(op.value) as Json;
    if (Array.isArray(parent)) {
      const index = last === "-" ? parent.length : Number(last);
      if (op.op === "add") parent.splice(index, 0, value);
      else parent[index] = value;
    } else if (parent !== null && typeof parent === "object") {
      parent[last] = value;
    }
  }
  return root as unknown as T;
}
