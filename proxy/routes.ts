/**
 * ServiceProfile-shaped routes: validation of what discovery sends, compilation into
 * matchers, and first-match selection for a request.
 *
 * Owns: the route and retry-budget wire shapes and their meaning. Does not own timeouts or
 * retries themselves (layers/timeout.ts, layers/retry.ts) — it only says which apply.
 */

export interface RouteCondition {
  method?: string;
  pathRegex?: string;
  all?: RouteCondition[];
  any?: RouteCondition[];
  not?: RouteCondition;
}

export interface RouteSpec {
  name: string;
  condition: RouteCondition;
  isRetryable?: boolean;
  /** Milliseconds, or a Go-style duration string such as "250ms" or "2s". */
  timeout?: number | string;
}

export interface RetryBudgetSpec {
  retryRatio: number;
  minRetriesPerSecond: number;
  /** Milliseconds, or a duration string. */
  ttl: number | string;
}

export interface CompiledRoute {
  name: string;
  isRetryable: boolean;
  timeoutMs: number | undefined;
  matches: (method: string, path: string) => boolean;
}

/** The route every request without a matching profile route falls into. */
export const defaultRoute: CompiledRoute = {
  name: "default",
  isRetryable: false,
  timeoutMs: undefined,
  matches: () => true,
};

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m)$/;
const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/** Parses 250, "250ms", "1.5s", "2m" into milliseconds; throws on anything else. */
export function parseDurationMs(value: number | string): number {
  if (typeof value === "number") {
    if (!Number.isFinite(value) || value < 0) throw new Error(`duration ${value} must be >= 0`);
    return value;
  }
  const m = durationPattern.exec(value.trim());
  if (!m) throw new Error(`duration "${value}" must look like 250ms, 2s or 1m`);
  return Number(m[1]) * unitMs[m[2]!]!;
}

type Matcher = (method: string, path: string) => boolean;

function compileCondition(c: RouteCondition, depth: number): Matcher {
  if (depth > 8) throw new Error("route condition nested deeper than 8 levels");
  const parts: Matcher[] = [];
  if (c.method !== undefined) {
    const method = c.method.toUpperCase();
    parts.push((m) => m === method);
  }
  if (c.pathRegex !== undefined) {
    const re = new RegExp(`^(?:${c.pathRegex})$`);
    parts.push((_m, p) => re.test(p));
  }
  if (c.all !== undefined) {
    const all = c.all.map((x) => compileCondition(x, depth + 1));
    parts.push((m, p) => all.every((f) => f(m, p)));
  }
  if (c.any !== undefined) {
    const any = c.any.map((x) => compileCondition(x, depth + 1));
    parts.push((m, p) => any.some((f) => f(m, p)));
  }
  if (c.not !== undefined) {
    const not = compileCondition(c.not, depth + 1);
    parts.push((m, p) => !not(m, p));
  }
  if (parts.length === 0)
    throw new Error("route condition matches nothing: give method, pathRegex, all, any or not");
  return (m, p) => parts.every((f) => f(m, p));
}

/** Compiles one route; throws with a message naming the route when it is invalid. */
export function compileRoute(spec: RouteSpec): CompiledRoute {
  try {
    return {
      name: spec.name,
      isRetryable: spec.isRetryable === true,
      timeoutMs: spec.timeout === undefined ? undefined : parseDurationMs(spec.timeout),
      matches: compileCondition(spec.condition, 0),
    };
  } catch (err) {
    throw new Error(`route "${spec.name}": ${(err as Error).message}`);
  }
}

/** Strips the query string: profile regexes match the path only. */
export function pathOf(pathAndQuery: string): string {
  const q = pathAndQuery.indexOf("?");
  return q === -1 ? pathAndQuery : pathAndQuery.slice(0, q);
}

/** First route whose condition matches, else the default route. */
export function selectRoute(
  routes: readonly CompiledRoute[],
  method: string,
  pathAndQuery: string,
): CompiledRoute {
  if (routes.length === 0) return defaultRoute;
  const path = pathOf(pathAndQuery);
  for (const r of routes) if (r.matches(method, path)) return r;
  return defaultRoute;
}
