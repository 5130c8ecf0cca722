/**
 * Layer (outbound): resolves where a request goes and attaches the `Service` (endpoints,
 * routes, budget).
 *
 * - Capture mode: by the connection's original destination. A Service's ClusterIP:port
 *   resolves to that Service's endpoints, profile and budget; a pod IP:port to that pod — with
 *   the profile and budget of the Service `Host` names when that pod is one of its endpoints (a
 *   headless Service); anything the destination service does not know (404) goes to the
 *   original destination itself, in plaintext, as linkerd does for non-mesh destinations. A
 *   header never chooses the endpoint: a request reaches only what the address the application
 *   dialled names.
 * - Explicit use (the application dialled the outbound port): by `Host`/`:authority`; a short
 *   Service name (`web:8080`) resolves in the pod's own namespace.
 *
 * A target that is the proxy itself is refused: a loop.
 *
 * Owns: that resolution step. Does not pick an endpoint (layers/balance.ts).
 */

import { parseHostPort } from "../config.ts";
import type { Discovery } from "../discovery-client.ts";
import { type Layer, ProxyError } from "../handler.ts";
import { authorityOf, type ProxyAddresses } from "../outbound-destination.ts";
import type { PeakEwmaParams } from "../peak-ewma.ts";
import { Service } from "../service.ts";

/** Direct (non-mesh) services, one per authority, bounded like discovery's watches. */
class DirectServices {
  private readonly services = new Map<string, Service>();
  constructor(
    private readonly ewma: PeakEwmaParams,
    private readonly max: number,
    private readonly self: ProxyAddresses | undefined,
  ) {}
  get(authority: string): Service | undefined {
    const hit = this.services.get(authority);
    if (hit) return hit;
    const hp = parseHostPort(authority) ?? parseHostPort(`${authority}:80`);
    if (!hp) return undefined;
    if (this.self?.isSelf(hp)) throw new ProxyError("Forbidden", `${authority} is this proxy (a loop)`, true);
    const service = new Service(authority, this.ewma);
    service.balancer.update([{ address: hp.host, port: hp.port }]);
    if (this.services.size >= this.max) this.services.delete(this.services.keys().next().value as string);
    this.services.set(authority, service);
    return service;
  }
}

export interface NameContext {
  /** The pod's namespace, for short names; undefined leaves them as they are. */
  podNamespace: string | undefined;
  clusterDomain: string;
}

const singleLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * `web:8080` → `web.<ns>.svc.<domain>:8080` in the pod's namespace (what the pod's resolver
 * does with its search path); every other authority is returned as it is.
 */
export function canonicalAuthority(authority: string, names: NameContext): string {
  if (names.podNamespace === undefined) return authority;
  const colon = authority.lastIndexOf(":");
  const host = (colon === -1 ? authority : authority.slice(0, colon)).toLowerCase();
  const port = colon === -1 ? "80" : authority.slice(colon + 1);
  if (!singleLabel.test(host) || !/^\d{1,5}$/.test(port)) return authority;
  return `${host}.${names.podNamespace}.svc.${names.clusterDomain}:${port}`;
}

/** Views of a named Service pinned to one pod's endpoint: its routes and budget, that balancer. */
const pinnedViews = new WeakMap<Service, WeakMap<Service, Service>>();

/**
 * The Service `named`, reached only through `pod`'s endpoint: routes, budget and authority are
 * read live from `named`, endpoints from `pod`.
 */
function pinned(named: Service, pod: Service): Service {
  let byPod = pinnedViews.get(named);
  if (!byPod) {
    byPod = new WeakMap();
    pinnedViews.set(named, byPod);
  }
  let view = byPod.get(pod);
  if (!view) {
    view = Object.create(named, { balancer: { value: pod.balancer } }) as Service;
    byPod.set(pod, view);
  }
  return view;
}

/** A discovery answer that is the pod at `address` alone (not a Service's ClusterIP). */
function isPodAnswer(service: Service, address: string): boolean {
  const endpoints = service.balancer.list();
  return endpoints.length === 1 && endpoints[0]!.address === address;
}

export function discoverService(
  discovery: Discovery | undefined,
  ewma: PeakEwmaParams,
  max: number,
  names: NameContext = { podNamespace: undefined, clusterDomain: "cluster.local" },
  self?: ProxyAddresses,
): Layer {
  const direct = new DirectServices(ewma, max, self);
  return (next) => async (req) => {
    const destination = req.conn.originalDestination;
    let key: string;
    if (destination) key = authorityOf(destination);
    else if (req.authority === "") throw new ProxyError("BadRequest", "request has no authority");
    else key = canonicalAuthority(req.authority, names);
    const resolved = discovery ? await discovery.resolve(key) : "direct";
    if (resolved === undefined) {
      throw new ProxyError("DiscoveryUnavailable", `no discovery answer for ${key}`, true);
    }
    // Unknown names go where the client's own authority says, unchanged.
    let service = resolved === "direct" ? direct.get(destination ? key : req.authority) : resolved;
    if (!service) throw new ProxyError("BadRequest", `authority ${req.authority} is not host:port`);
    if (discovery && destination && service !== undefined && resolved !== "direct" && req.authority !== "") {
      if (isPodAnswer(service, destination.host)) {
        const named = await discovery.resolve(canonicalAuthority(req.authority, names));
        const owns =
          named && named !== "direct" && named.balancer.list().some((e) => e.address === destination.host);
        if (owns) service = pinned(named, service);
      }
    }
    req.service = service;
    return next(req);
  };
}
