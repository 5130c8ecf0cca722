/**
 * The two stacks, each composed in exactly one place, outermost layer first — the whole
 * request path of the proxy can be read here.
 *
 * Owns: layer order. Does not own any layer's behaviour.
 */
import type { ProxyConfig } from "./config.ts";
import type { Discovery } from "./discovery-client.ts";
import { type Handler, stack } from "./handler.ts";
import { forbidden, identifyClients } from "./layers/authorize.ts";
import { balanceEndpoints } from "./layers/balance.ts";
import { discoverService } from "./layers/discover.ts";
import { respondToErrors } from "./layers/errors.ts";
import { forwardToApp, forwardToEndpoint, type HttpClients } from "./layers/forward.ts";
import { recordMetrics } from "./layers/metrics.ts";
import { retryFailures } from "./layers/retry.ts";
import { selectProfileRoute } from "./layers/route.ts";
import { enforceRouteTimeout } from "./layers/timeout.ts";
import type { ProxyAddresses } from "./outbound-destination.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";

/** Application → mesh: discover, route, time out, retry, balance, then mTLS to the peer. */
export function outboundStack(
  config: ProxyConfig,
  metrics: ProxyMetrics,
  discovery: Discovery | undefined,
  clients: HttpClients,
  self?: ProxyAddresses,
): Handler {
  const names = {
    podNamespace: config.outbound?.podNamespace,
    clusterDomain: config.outbound?.clusterDomain ?? "cluster.local",
  };
  return stack(
    [
      recordMetrics(metrics, "outbound"),
      respondToErrors,
      discoverService(discovery, config.balancer, config.limits.maxServices, names, self),
      selectProfileRoute,
      enforceRouteTimeout,
      retryFailures(metrics, config.retries),
      balanceEndpoints,
    ],
    forwardToEndpoint(clients),
  );
}

/** Mesh → application: the verified peer's identity attached, then plaintext to the local app. */
export function inboundStack(
  inbound: NonNullable<ProxyConfig["inbound"]>,
  metrics: ProxyMetrics,
  clients: HttpClients,
): Handler {
  return stack(
    [recordMetrics(metrics, "inbound"), respondToErrors, selectProfileRoute, identifyClients(inbound)],
    forwardToApp(clients, inbound.app),
  );
}

/**
 * Inbound HTTP on a connection the policy refuses (connection-policy.ts): every request is
 * answered 403 by the proxy, counted like any other, and nothing reaches the application.
 */
export function forbiddenStack(metrics: ProxyMetrics): Handler {
  return stack([recordMetrics(metrics, "inbound"), respondToErrors], (req) =>
    Promise.reject(forbidden(req.conn.peerIdentity)),
  );
}
