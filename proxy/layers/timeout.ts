/**
 * Layer: enforces the route's timeout over the whole exchange up to the response head,
 * retries included. On expiry the in-flight attempt is cancelled and the client gets 504.
 * Streaming bodies after the head are not cut (a gRPC stream may run for hours).
 *
 * Owns: the deadline. Does not decide what the timeout is (routes.ts).
 */
import { discardBody } from "../body.ts";
import { type Layer, ProxyError } from "../handler.ts";

export const enforceRouteTimeout: Layer = (next) => (req) => {
  const timeoutMs = req.route?.timeoutMs;
  if (timeoutMs === undefined || timeoutMs <= 0) return next(req);
  const ac = req.signal.child();
  req.signal = ac;
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      ac.abort();
      reject(new ProxyError("Timeout", `route ${req.route?.name} exceeded ${timeoutMs} ms`));
    }, timeoutMs);
    next(req).then(
      (res) => {
        // The parent link stays: a client that leaves mid-body still cancels the upstream.
        clearTimeout(timer);
        if (expired) discardBody(res.body);
        else resolve(res);
      },
      (err: unknown) => {
        clearTimeout(timer);
        if (!expired) reject(err);
      },
    );
  });
};
