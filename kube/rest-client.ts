// A small REST client for the Kubernetes API, for any resource given its apiVersion and plural:
// get, list (paged), create, replace, patch (merge, JSON, apply) and delete, including
// subresources such as /status. Authentication (client certificates, bearer and exec tokens,
// in-cluster service account) comes from @kubernetes/client-node's KubeConfig on every request,
// so rotated tokens are picked up; connections are kept alive and pooled. Owns paths, content
// types and the mapping of failures to ApiError; does not own watches (informer.ts uses
// client-node's Watch) nor any policy about retries.
import { request as httpRequest, type IncomingMessage } from "node:http";
import { Agent, request as httpsRequest, type RequestOptions } from "node:https";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";

/** Where a kind lives in the API: enough to build every path without discovery. */
export interface ResourceType {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

/** A list as the API server sends it (the generated client names `continue` `_continue`). */
export interface ObjectList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export type PatchType = "merge" | "json" | "apply";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  apply: "application/apply-patch+yaml",
};

/** A failed API call: the HTTP status, and the Status object's reason and message when there is one. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${method} ${path}: ${statusCode} ${reason}: ${message}`);
  }
}

const hasStatus = (err: unknown, code: number): boolean => err instanceof ApiError && err.statusCode === code;
export const isNotFound = (err: unknown): boolean => hasStatus(err, 404);
export const isConflict = (err: unknown): boolean => hasStatus(err, 409);
export const isGone = (err: unknown): boolean => hasStatus(err, 410);
/** A JSON patch `test` operation that failed (the precondition did not hold). */
export const isInvalid = (err: unknown): boolean => hasStatus(err, 422);

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  timeoutMs?: number;
  /** Aborts the request (an informer that stops does not wait for a slow list). */
  signal?: AbortSignal;
  /** The Accept header (default application/json). */
  accept?: string;
}

export function apiPrefix(apiVersion: string): string {
  return apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** The collection path (`name` omitted) or the object path of a resource, with an optional subresource. */
export function resourcePath(
  type: ResourceType,
  namespace?: string,
  name?: string,
  subresource?: string,
): string {
  let path = apiPrefix(type.apiVersion);
  if (type.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${type.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (subresource) path += `/${subresource}`;
  return path;
}

export class KubeClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });
  private readonly discovery = new Map<string, Promise<ResourceType[]>>();

  constructor(readonly kubeConfig: KubeConfig) {}

  async request<T>(spec: RequestSpec): Promise<T> {
    const { status, text } = await this.send(spec);
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
    throw toApiError(status, text, spec);
  }

  /** The body as text (e.g. a pod's /metrics through the proxy subresource), or an ApiError. */
  async requestText(spec: RequestSpec): Promise<string> {
    const { status, text } = await this.send(spec);
    if (status >= 200 && status < 300) return text;
    throw toApiError(status, text, spec);
  }

  get<T extends KubernetesObject>(type: ResourceType, name: string, namespace?: string): Promise<T> {
    return this.request<T>({ method: "GET", path: resourcePath(type, namespace, name) });
  }

  /** One page of a list; the informer follows `metadata.continue`. */
  list<T extends KubernetesObject>(
    type: ResourceType,
    options: {
      namespace?: string;
      labelSelector?: string;
      limit?: number;
      continue?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<ObjectList<T>> {
    return this.request({
      method: "GET",
      path: resourcePath(type, options.namespace),
      query: { labelSelector: options.labelSelector, limit: options.limit, continue: options.continue },
      timeoutMs: 120_000,
      signal: options.signal,
    });
  }

  create<T extends KubernetesObject>(type: ResourceType, body: T): Promise<T> {
    return this.request<T>({ method: "POST", path: resourcePath(type, body.metadata?.namespace), body });
  }

  /** PUT; `body.metadata.resourceVersion`, when set, is the optimistic-concurrency precondition. */
  replace<T extends KubernetesObject>(type: ResourceType, body: T, subresource?: string): Promise<T> {
    const path = resourcePath(type, body.metadata?.namespace, body.metadata?.name ?? "", subresource);
    return this.request<T>({ method: "PUT", path, body });
  }

  patch<T extends KubernetesObject>(
    type: ResourceType,
    target: { name: string; namespace?: string; subresource?: string },
    patchType: PatchType,
    body: unknown,
    query: Record<string, string | boolean | undefined> = {},
  ): Promise<T> {
    return this.request<T>({
      method: "PATCH",
      path: resourcePath(type, target.namespace, target.name, target.subresource),
      body,
      contentType: PATCH_CONTENT_TYPES[patchType],
      query,
    });
  }

  async delete(type: ResourceType, name: string, namespace?: string): Promise<void> {
    await this.request({ method: "DELETE", path: resourcePath(type, namespace, name) });
  }

  /** The ResourceType of a kind, through (cached) discovery of its group version. */
  async resourceFor(apiVersion: string, kind: string): Promise<ResourceType> {
    let resources = this.discovery.get(apiVersion);
    if (!resources) {
      resources = this.discover(apiVersion);
      this.discovery.set(apiVersion, resources);
      resources.catch(() => this.discovery.delete(apiVersion));
    }
    const found = (await resources).find((r) => r.kind === kind);
    if (!found) throw new Error(`the API server does not serve ${kind} in ${apiVersion}`);
    return found;
  }

  /** Closes pooled connections (on manager stop). */
  close(): void {
    this.agent.destroy();
  }

  private async discover(apiVersion: string): Promise<ResourceType[]> {
    const list = await this.request<{
      resources: Array<{ name: string; kind: string; namespaced: boolean }>;
    }>({
      method: "GET",
      path: apiPrefix(apiVersion),
    });
    return list.resources
      .filter((r) => !r.name.includes("/"))
      .map((r) => ({ apiVersion, kind: r.kind, plural: r.name, namespaced: r.namespaced }));
  }

  /** Called once per request sent (for the requests-per-verb metric). */
  onRequest: ((method: string) => void) | undefined;

  private async send(spec: RequestSpec): Promise<{ status: number; text: string }> {
    this.onRequest?.(spec.method);
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    const url = new URL(cluster.server.replace(/\/$/, "") + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const opts: RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(opts);
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    const headers: Record<string, string> = { Accept: spec.accept ?? "application/json" };
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k] = String(v);
    if (payload !== undefined) {
      headers["Content-Type"] = spec.contentType ?? "application/json";
      headers["Content-Length"] = String(Buffer.byteLength(payload));
    }
    const tls = url.protocol === "https:";
    const options: RequestOptions = {
      method: spec.method,
      headers,
      timeout: spec.timeoutMs ?? 30_000,
      ...(spec.signal ? { signal: spec.signal } : {}),
      ...(opts.auth ? { auth: opts.auth } : {}),
      ...(tls
        ? { agent: this.agent, ca: opts.ca, cert: opts.cert, key: opts.key, servername: opts.servername }
        : {}),
      ...(tls && opts.rejectUnauthorized !== undefined
        ? { rejectUnauthorized: opts.rejectUnauthorized }
        : {}),
    };
    return new Promise((resolve, reject) => {
      const req = (tls ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${spec.method} ${spec.path}: timed out`)));
      req.on("error", reject);
      req.end(payload);
    });
  }
}

function toApiError(status: number, text: string, spec: RequestSpec): ApiError {
  let reason = "Unknown";
  let message = text.slice(0, 500);
  try {
    const body = JSON.parse(text) as { kind?: string; reason?: string; message?: string };
    if (body.kind === "Status") {
      reason = body.reason ?? reason;
      message = body.message ?? message;
    }
  } catch {
    // not JSON: keep the raw text
  }
  return new ApiError(status, reason, message, spec.method, spec.path);
}
