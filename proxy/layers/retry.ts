/**
 * Layer: retries failed attempts of routes marked isRetryable, only when the request body
 * can be replayed (empty, or small enough to buffer with a known length), only up to
 * `maxAttempts`, and only while the service's retry budget allows — so a failing upstream
 * sees at most (1 + retryRatio) × load, never a storm. A retry avoids the endpoints that
 * already failed this request.
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

function settle(o: Outcome): ProxyResponse {
  if (o.err !== undefined) throw o.err;
  return o.res!;
}

export function retryFailures(metrics: ProxyMetrics, options: RetryOptions): Layer {
  return (next) => async (req) => {
    const service = req.service;
    const route = req.route;
    service?.budget.deposit();
    if (!service || !route?.isRetryable || options.maxAttempts <= 1) return next(req);
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
      if (req.endpoint) {
        req.avoid ??= new Set();
        req.avoid.add(req.endpoint.key);
      }
      discardBody(outcome.res?.body);
      metrics.retries.inc(labels);
      outcome = await attempt(next, req);
    }
    return settle(outcome);
  };
}
