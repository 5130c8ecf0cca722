// What one watched authority resolves to, as a pure function of the observed Service, its
// EndpointSlices, their Pods and the ServiceProfile — or, for a pod IP:port, of that Pod: the
// discovery update the proxy reads (docs/proxy.md, "Discovery"). Meshed pods (label
// trellis.dev/proxy-version) are reached on the proxy's inbound port with the pod's SPIFFE
// identity and the application port as `targetPort` (the transport header); others on the
// target port, in plaintext. `opaque` says the port carries no HTTP: a Service port's
// appProtocol names a protocol that is not HTTP, or the pods list it in
// config.trellis.dev/opaque-ports. Owns that mapping; does not own watching or streaming
// (watch-hub.ts, destination-server.ts).
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import { parseDuration, type ServiceProfile } from "../../api/index.ts";
import { findCondition } from "../../kube/index.ts";
import type { ServiceAuthority } from "./authority.ts";

/** The proxy's inbound port: meshed endpoints are dialled here (docs/proxy.md). */
export const PROXY_INBOUND_PORT = 4143;
export const PROXY_VERSION_LABEL = "trellis.dev/proxy-version";

export interface WireEndpoint {
  address: string;
  port: number;
  identity?: string;
  /** Meshed endpoints: the application port behind the peer proxy. */
  targetPort?: number;
}

/** Pod (or, copied there by the injector, namespace) annotation: ports whose traffic is not HTTP. */
export const OPAQUE_PORTS_ANNOTATION = "config.trellis.dev/opaque-ports";

/**
 * appProtocol values that are HTTP, which proxies detect and route per request; any other
 * value (tcp, mysql, redis, tls, a custom name …) is relayed as opaque TCP — the choice that
 * always works, and never waits on a protocol where the server speaks first.
 */
const httpAppProtocols = new Set([
  "http",
  "http2",
  "h2c",
  "grpc",
  "grpc-web",
  "kubernetes.io/h2c",
  "kubernetes.io/ws",
  "ws",
]);

export interface WireRoute {
  name: string;
  condition: { method?: string; pathRegex: string };
  isRetryable: boolean;
  /** Milliseconds: the API allows `1h30m`, which the proxy's duration strings do not. */
  timeout?: number;
}

export interface WireRetryBudget {
  retryRatio: number;
  minRetriesPerSecond: number;
  ttl: number;
}

/** One line of the `/v1/watch` stream; each replaces the previous. */
export interface DiscoveryUpdate {
  endpoints: WireEndpoint[];
  routes: WireRoute[];
  retryBudget?: WireRetryBudget;
  opaque?: true;
}

export interface DestinationInputs {
  service: V1Service;
  slices: V1EndpointSlice[];
  pod: (namespace: string, name: string) => V1Pod | undefined;
  profile: ServiceProfile | undefined;
  trustDomain: string;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/** The port entry of the Service the authority's port names, or undefined. */
export function servicePortOf(
  service: V1Service,
  port: number,
): { name: string; appProtocol: string | undefined } | undefined {
  const found = service.spec?.ports?.find((p) => p.port === port && (p.protocol ?? "TCP") === "TCP");
  return found ? { name: found.name ?? "", appProtocol: found.appProtocol } : undefined;
}

export function opaqueAppProtocol(appProtocol: string | undefined): boolean {
  return appProtocol !== undefined && appProtocol !== "" && !httpAppProtocols.has(appProtocol.toLowerCase());
}

/** Whether the pod's opaque-ports annotation lists `port` (a malformed annotation lists nothing). */
export function podDeclaresOpaque(pod: V1Pod | undefined, port: number): boolean {
  const value = pod?.metadata?.annotations?.[OPAQUE_PORTS_ANNOTATION];
  if (!value) return false;
  for (const item of value.split(",")) {
    const m = /^\s*(\d{1,5})(?:-(\d{1,5}))?\s*$/.exec(item);
    if (!m) return false;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (port >= lo && port <= hi) return true;
  }
  return false;
}

/** Ready endpoints of the Service port, deduplicated, sorted so equal states compare equal. */
export function endpointsOf(inputs: DestinationInputs, target: ServiceAuthority): WireEndpoint[] {
  return serviceEndpoints(inputs, target).endpoints;
}

function serviceEndpoints(
  inputs: DestinationInputs,
  target: ServiceAuthority,
): { endpoints: WireEndpoint[]; opaque: boolean } {
  const servicePort = servicePortOf(inputs.service, target.port);
  if (!servicePort) return { endpoints: [], opaque: false };
  let opaque = opaqueAppProtocol(servicePort.appProtocol);
  const byAddress = new Map<string, WireEndpoint>();
  for (const slice of inputs.slices) {
    if (slice.addressType !== "IPv4" && slice.addressType !== "IPv6") continue;
    const port = slice.ports?.find((p) => (p.name ?? "") === servicePort.name)?.port;
    if (port === undefined) continue;
    for (const endpoint of slice.endpoints) {
      if (endpoint.conditions?.ready === false) continue;
      const address = endpoint.addresses[0];
      if (!address) continue;
      const ref = endpoint.targetRef;
      const pod =
        ref?.kind === "Pod" && ref.name ? inputs.pod(ref.namespace ?? target.namespace, ref.name) : undefined;
      // A pod this view does not hold yet (its informer lags the slices'): left out until it
      // arrives (a pod event recomputes the namespace's topics). Sent as unmeshed, a meshed
      // pod would be dialled in plaintext.
      if (ref?.kind === "Pod" && !pod) continue;
      byAddress.set(address, wireEndpoint(address, port, pod, inputs.trustDomain));
      opaque ||= podDeclaresOpaque(pod, port);
    }
  }
  const endpoints = [...byAddress.values()].sort(
    (a, b) => a.address.localeCompare(b.address) || a.port - b.port,
  );
  return { endpoints, opaque };
}

function wireEndpoint(
  address: string,
  port: number,
  pod: V1Pod | undefined,
  trustDomain: string,
): WireEndpoint {
  const meshed = pod?.metadata?.labels?.[PROXY_VERSION_LABEL] !== undefined;
  if (!pod || !meshed) return { address, port };
  const namespace = pod.metadata?.namespace ?? "default";
  const serviceAccount = pod.spec?.serviceAccountName ?? "default";
  return {
    address,
    port: PROXY_INBOUND_PORT,
    identity: spiffeId(trustDomain, namespace, serviceAccount),
    targetPort: port,
  };
}

/**
 * A pod IP:port: that pod alone (no profile: routes belong to Services). A port the pod's
 * proxy owns is never an endpoint: dialling it would put a peer in front of a proxy port.
 */
export function podUpdate(pod: V1Pod, ip: string, port: number, trustDomain: string): DiscoveryUpdate {
  const endpoint =
    pod.metadata?.labels?.[PROXY_VERSION_LABEL] !== undefined && proxyPorts.has(port)
      ? { address: ip, port }
      : wireEndpoint(ip, port, pod, trustDomain);
  return { endpoints: [endpoint], routes: [], ...(podDeclaresOpaque(pod, port) ? { opaque: true } : {}) };
}

const proxyPorts = new Set([PROXY_INBOUND_PORT, 4140, 4191]);

/** Routes and budget of a profile the operator has not rejected; nothing otherwise. */
export function profileOf(
  profile: ServiceProfile | undefined,
): Pick<DiscoveryUpdate, "routes" | "retryBudget"> {
  if (!profile) return { routes: [] };
  const ready = findCondition(profile.status?.conditions ?? [], "Ready");
  if (ready?.reason === "InvalidSpec") return { routes: [] };
  const routes = (profile.spec.routes ?? []).map((r): WireRoute => {
    const condition: WireRoute["condition"] = { pathRegex: r.condition.pathRegex };
    if (r.condition.method) condition.method = r.condition.method;
    const route: WireRoute = { name: r.name, condition, isRetryable: r.isRetryable ?? false };
    if (r.timeout) route.timeout = parseDuration(r.timeout);
    return route;
  });
  const b = profile.spec.retryBudget;
  if (!b) return { routes };
  return {
    routes,
    retryBudget: {
      retryRatio: b.retryRatio ?? 0.2,
      minRetriesPerSecond: b.minRetriesPerSecond ?? 10,
      ttl: parseDuration(b.ttl ?? "10s"),
    },
  };
}

export function destinationUpdate(inputs: DestinationInputs, target: ServiceAuthority): DiscoveryUpdate {
  let profile: Pick<DiscoveryUpdate, "routes" | "retryBudget">;
  try {
    profile = profileOf(inputs.profile);
  } catch {
    // A duration the schema should have refused: serve no routes rather than a broken line.
    profile = { routes: [] };
  }
  const { endpoints, opaque } = serviceEndpoints(inputs, target);
  return { endpoints, ...profile, ...(opaque ? { opaque: true } : {}) };
}
