/**
 * What the outbound side knows about one destination authority: its endpoints (in a
 * balancer), its compiled profile routes and its retry budget.
 *
 * Owns: applying a discovery update to that state. Does not talk to discovery
 * (discovery-client.ts) and does not forward requests (layers/).
 */
import { Balancer } from "./balancer.ts";
import type { DiscoveryUpdate } from "./discovery-protocol.ts";
import type { PeakEwmaParams } from "./peak-ewma.ts";
import { defaultRetryBudget, RetryBudget, type RetryBudgetParams } from "./retry-budget.ts";
import { type CompiledRoute, compileRoute, parseDurationMs } from "./routes.ts";

export class Service {
  readonly balancer: Balancer;
  routes: CompiledRoute[] = [];
  budget: RetryBudget;
  /** Route names dropped from the last update because they did not compile. */
  invalidRoutes: string[] = [];
  /** The destination said its connections are not HTTP: relay them without detection. */
  opaque = false;

  constructor(
    readonly authority: string,
    ewma: PeakEwmaParams,
  ) {
    this.balancer = new Balancer(ewma);
    this.budget = new RetryBudget(defaultRetryBudget);
  }

  apply(update: DiscoveryUpdate): void {
    this.balancer.update(update.endpoints);
    this.opaque = update.opaque === true;
    const routes: CompiledRoute[] = [];
    const invalid: string[] = [];
    for (const spec of update.routes) {
      try {
        routes.push(compileRoute(spec));
      } catch {
        invalid.push(spec.name);
      }
    }
    this.routes = routes;
    this.invalidRoutes = invalid;
    const params: RetryBudgetParams = update.retryBudget
      ? {
          retryRatio: update.retryBudget.retryRatio,
          minRetriesPerSecond: update.retryBudget.minRetriesPerSecond,
          ttlMs: safeDuration(update.retryBudget.ttl, defaultRetryBudget.ttlMs),
        }
      : defaultRetryBudget;
    if (!sameBudget(params, this.budget.params)) this.budget = new RetryBudget(params);
  }
}

function safeDuration(v: number | string, fallback: number): number {
  try {
    const ms = parseDurationMs(v);
    return ms > 0 ? ms : fallback;
  } catch {
    return fallback;
  }
}

function sameBudget(a: RetryBudgetParams, b: RetryBudgetParams): boolean {
  return (
    a.retryRatio === b.retryRatio && a.minRetriesPerSecond === b.minRetriesPerSecond && a.ttlMs === b.ttlMs
  );
}
