/**
 * Layer (outbound): picks an endpoint of the request's service by power of two choices over
 * peak-EWMA load, and feeds the observed latency back. A connect failure is recorded as a
 * slow response so the balancer steers away from a dead endpoint at once.
 *
 * Owns: endpoint choice and load feedback. Does not connect (layers/forward.ts).
 */
import { type Layer, ProxyError } from "../handler.ts";

const connectFailurePenaltyMs = 1_000;

export const balanceEndpoints: Layer = (next) => async (req) => {
  const balancer = req.service?.balancer;
  const endpoint = balancer?.pick(req.avoid);
  if (!endpoint) throw new ProxyError("NoEndpoints", `no endpoints for ${req.authority}`, true);
  req.endpoint = endpoint;
  req.upstreamIdentity = endpoint.identity;
  const started = performance.now();
  const done = endpoint.ewma.start();
  try {
    const res = await next(req);
    done(performance.now() - started);
    return res;
  } catch (err) {
    const elapsed = performance.now() - started;
    done(
      err instanceof ProxyError && err.reason === "ConnectFailed"
        ? Math.max(elapsed, connectFailurePenaltyMs)
        : elapsed,
    );
    throw err;
  }
};
