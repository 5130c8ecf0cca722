// Writes to the API server the way every Trellis reconciler should: server-side apply of the
// whole desired object under one field manager (forced: the operator owns the fields it sets),
// and status written through the status subresource, either as a merge patch or as an apply.
// Owns content types, the field manager and the apiVersion/kind → resource mapping; does not
// own what is desired (each controller's render/plan code) or reading (informers).
import type { KubernetesObject } from "@kubernetes/client-node";
import type { KubeClient, ResourceType } from "./rest-client.ts";

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

export function refOf(obj: KubernetesObject): ObjectRef {
  const { apiVersion, kind } = obj;
  const name = obj.metadata?.name;
  if (!apiVersion || !kind || !name) throw new Error("an object needs apiVersion, kind and metadata.name");
  return {
    apiVersion,
    kind,
    name,
    ...(obj.metadata?.namespace ? { namespace: obj.metadata.namespace } : {}),
  };
}

export class ObjectWriter {
  constructor(
    readonly client: KubeClient,
    /** The one field manager of this operator, e.g. "trellis-operator". */
    readonly fieldManager: string,
  ) {}

  /** Server-side apply (force) of `desired`, which holds only the fields this operator owns. Returns the live object. */
  async apply<T extends KubernetesObject>(desired: T): Promise<T> {
    const ref = refOf(desired);
    return this.client.patch<T>(await this.typeOf(ref), ref, "apply", desired, this.applyQuery());
  }

  /** Server-side apply (force) on the status subresource; `desired` carries apiVersion, kind, metadata.name/namespace and status. */
  async applyStatus<T extends KubernetesObject>(desired: T): Promise<T> {
    const ref = refOf(desired);
    return this.client.patch<T>(
      await this.typeOf(ref),
      { ...ref, subresource: "status" },
      "apply",
      desired,
      this.applyQuery(),
    );
  }

  /** A JSON merge patch of `.status` on the status subresource (null deletes a field). */
  async patchStatus<T extends KubernetesObject>(ref: ObjectRef, status: Record<string, unknown>): Promise<T> {
    return this.client.patch<T>(
      await this.typeOf(ref),
      { ...ref, subresource: "status" },
      "merge",
      { status },
      { fieldManager: this.fieldManager },
    );
  }

  /** A JSON patch (RFC 6902) on the object itself, e.g. finalizers with a resourceVersion `test`. */
  async jsonPatch<T extends KubernetesObject>(ref: ObjectRef, operations: JsonPatchOperation[]): Promise<T> {
    return this.client.patch<T>(await this.typeOf(ref), ref, "json", operations, {
      fieldManager: this.fieldManager,
    });
  }

  async delete(ref: ObjectRef): Promise<void> {
    await this.client.delete(await this.typeOf(ref), ref.name, ref.namespace);
  }

  typeOf(ref: { apiVersion: string; kind: string }): Promise<ResourceType> {
    return this.client.resourceFor(ref.apiVersion, ref.kind);
  }

  private applyQuery(): Record<string, string | boolean> {
    return { fieldManager: this.fieldManager, force: true };
  }
}

export type JsonPatchOperation =
  | { op: "add" | "replace" | "test"; path: string; value: unknown }
  | { op: "remove"; path: string };
