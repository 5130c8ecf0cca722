/**
 * The discovery wire protocol's message shape and its validation (see docs/proxy.md).
 * One update is one line of JSON on the `/v1/watch` stream and replaces the previous state.
 *
 * Owns: parsing and validating an update. Does not own the stream or reconnection
 * (discovery-client.ts).
 */
import type { EndpointSpec } from "./balancer.ts";
import type { RetryBudgetSpec, RouteCondition, RouteSpec } from "./routes.ts";

export interface DiscoveryUpdate {
  endpoints: EndpointSpec[];
  routes: RouteSpec[];
  retryBudget: RetryBudgetSpec | undefined;
  /**
   * True when the destination port is opaque (a Service port's `appProtocol`, or the pod's
   * opaque-ports annotation): its connections are relayed without protocol detection.
   */
  opaque?: boolean;
}

function port(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new Error(`${where} must be an integer 1-65535`);
  }
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseEndpoint(v: unknown, i: number): EndpointSpec {
  if (!isRecord(v)) throw new Error(`endpoints[${i}] must be an object`);
  const { address, identity } = v;
  if (typeof address !== "string" || address === "")
    throw new Error(`endpoints[${i}].address must be a string`);
  const spec: EndpointSpec = { address, port: port(v.port, `endpoints[${i}].port`) };
  if (identity !== undefined && identity !== null && typeof identity !== "string") {
    throw new Error(`endpoints[${i}].identity must be a string`);
  }
  if (typeof identity === "string" && identity !== "") {
    spec.identity = identity;
    // Only a meshed peer reads the header; a plaintext endpoint is dialled at its own port.
    if (v.targetPort !== undefined && v.targetPort !== null) {
      spec.targetPort = port(v.targetPort, `endpoints[${i}].targetPort`);
    }
  }
  return spec;
}

function parseCondition(v: unknown, where: string): RouteCondition {
  if (!isRecord(v)) throw new Error(`${where} must be an object`);
  const c: RouteCondition = {};
  if (v.method !== undefined) {
    if (typeof v.method !== "string") throw new Error(`${where}.method must be a string`);
    c.method = v.method;
  }
  if (v.pathRegex !== undefined) {
    if (typeof v.pathRegex !== "string") throw new Error(`${where}.pathRegex must be a string`);
    c.pathRegex = v.pathRegex;
  }
  for (const key of ["all", "any"] as const) {
    const list = v[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw new Error(`${where}.${key} must be an array`);
    c[key] = list.map((x, i) => parseCondition(x, `${where}.${key}[${i}]`));
  }
  if (v.not !== undefined) c.not = parseCondition(v.not, `${where}.not`);
  return c;
}

function parseRoute(v: unknown, i: number): RouteSpec {
  if (!isRecord(v)) throw new Error(`routes[${i}] must be an object`);
  if (typeof v.name !== "string") throw new Error(`routes[${i}].name must be a string`);
  const route: RouteSpec = { name: v.name, condition: parseCondition(v.condition, `routes[${i}].condition`) };
  if (v.isRetryable !== undefined) {
    if (typeof v.isRetryable !== "boolean") throw new Error(`routes[${i}].isRetryable must be a boolean`);
    route.isRetryable = v.isRetryable;
  }
  if (v.timeout !== undefined) {
    if (typeof v.timeout !== "string" && typeof v.timeout !== "number") {
      throw new Error(`routes[${i}].timeout must be a duration`);
    }
    route.timeout = v.timeout;
  }
  return route;
}

function parseBudget(v: unknown): RetryBudgetSpec | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) throw new Error("retryBudget must be an object");
  const { retryRatio, minRetriesPerSecond, ttl } = v;
  if (typeof retryRatio !== "number" || retryRatio < 0)
    throw new Error("retryBudget.retryRatio must be >= 0");
  if (typeof minRetriesPerSecond !== "number" || minRetriesPerSecond < 0) {
    throw new Error("retryBudget.minRetriesPerSecond must be >= 0");
  }
  if (typeof ttl !== "string" && typeof ttl !== "number")
    throw new Error("retryBudget.ttl must be a duration");
  return { retryRatio, minRetriesPerSecond, ttl };
}

/** Validates one decoded update line; throws with the path of the first bad field. */
export function parseDiscoveryUpdate(v: unknown): DiscoveryUpdate {
  if (!isRecord(v)) throw new Error("update must be a JSON object");
  const endpoints = v.endpoints ?? [];
  const routes = v.routes ?? [];
  if (!Array.isArray(endpoints)) throw new Error("endpoints must be an array");
  if (!Array.isArray(routes)) throw new Error("routes must be an array");
  if (v.opaque !== undefined && typeof v.opaque !== "boolean") throw new Error("opaque must be a boolean");
  return {
    endpoints: endpoints.map(parseEndpoint),
    routes: routes.map(parseRoute),
    retryBudget: parseBudget(v.retryBudget),
    ...(v.opaque === true ? { opaque: true } : {}),
  };
}

/**
 * Splits a growing buffer of newline-delimited JSON into complete lines. Returns the lines and
 * the unfinished remainder; throws when the remainder passes `maxLineBytes`.
 */
export function splitLines(
  pending: string,
  chunk: string,
  maxLineBytes: number,
): { lines: string[]; rest: string } {
  const text = pending + chunk;
  const parts = text.split("\n");
  const rest = parts.pop() ?? "";
  if (rest.length > maxLineBytes) throw new Error(`discovery update longer than ${maxLineBytes} bytes`);
  return { lines: parts.filter((l) => l.trim() !== ""), rest };
}
