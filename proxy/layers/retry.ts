/**
 * Layer: retries failed attempts of routes marked isRetryable, only when the request body
 * can be replayed (empty, or small enough to buffer with a known length), only up to
 * `maxAttempts`, and only while the service's retry budget allows — so a failing upstream
 * sees at most (1 + retryRatio) × load, never a storm. A retry avoids the endpoints that
 * already failed this request. On any route, a request that no upstream received (its connect
 * or handshake failed: a pod going away, a handshake past its deadline) and that has no
 * streamed body to lose is tried once more on another endpoint, within the same budget.
 *
 * Owns: the retry decision. Does not classify routes (routes.ts) or keep the budget
 * (retry-budget.ts).
 */
import { bufferBody, discardBody } from "../body.ts";
import {
  type Handler,
  type Layer,
  ProxyError,
  type ProxyRequest,
  type ProxyResponse,
  type RequestBody,
} from "../handler.ts";
import type { ProxyMetrics } from "../proxy-metrics.ts";

export interface RetryOptions {
  maxAttempts: number;
  maxBufferedBodyBytes: number;
}

type Outcome = { res: ProxyResponse; err?: undefined } | { res?: undefined; err: unknown };

function failed(o: Outcome): boolean {
  return o.err !== undefined || o.res!.status >= 500;
}

async function attempt(next: Handler, req: ProxyRequest): Promise<Outcome> {
  try {
    return { res: await next(req) };
  } catch (err) {
    return { err };
  }
}

/** Failed before any byte reached an upstream, and replayable as it is. */
function unsent(o: Outcome, req: ProxyRequest): boolean {
  return o.err instanceof ProxyError && o.err.beforeSend && req.body.kind !== "stream";
}

function avoidEndpoint(req: ProxyRequest): void {
  if (!req.endpoint) return;
  req.avoid ??= new Set();
  req.avoid.add(req.endpoint.key);
}

function settle(o: Outcome): ProxyResponse {
  if (o.err !== undefined) throw o.err;
  return o.res!;
}

export function retryFailures(metrics: ProxyMetrics, options: RetryOptions): Layer {
  return (next) => async (req) => {
    const service = req.service;
    const route = req.route;
    service?.budget.deposit();
    if (!service || options.maxAttempts <= 1) return next(req);
    if (!route?.isRetryable) {
      const first = await attempt(next, req);
      if (!unsent(first, req) || req.signal.aborted || !service.budget.tryWithdraw()) return settle(first);
      avoidEndpoint(req);
      metrics.retries.inc([service.authority, route?.name ?? "default"]);
      return settle(await attempt(next, req));
    }
    const labels = [service.authority, route.name];
    let body: RequestBody | undefined;
    try {
      body = await bufferBody(req.body, options.maxBufferedBodyBytes);
    } catch (err) {
      throw new ProxyError("BadRequest", (err as Error).message);
    }
    if (body === undefined) {
      metrics.retriesSkipped.inc([...labels, "body_not_replayable"]);
      return next(req);
    }
    req.body = body;
    let outcome = await attempt(next, req);
    for (let n = 1; n < options.maxAttempts && failed(outcome) && !req.signal.aborted; n++) {
      if (!service.budget.tryWithdraw()) {
        metrics.retriesSkipped.inc([...labels, "budget_exhausted"]);
        break;
      }
      avoidEndpoint(req);
      discardBody(outcome.res?.body);
      metrics.retries.inc(labels);
      outcome = await attempt(next, req);
    }
    return settle(outcome);
  };
}
