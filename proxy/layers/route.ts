/**
 * Layer: picks the ServiceProfile route for the request (first match, else "default") so
 * later layers know its timeout and retryability and metrics can label by route.
 *
 * Owns: attaching the route. Does not act on it.
 */
import type { Layer } from "../handler.ts";
import { defaultRoute, selectRoute } from "../routes.ts";

export const selectProfileRoute: Layer = (next) => (req) => {
  req.route = req.service ? selectRoute(req.service.routes, req.method, req.path) : defaultRoute;
  return next(req);
};
