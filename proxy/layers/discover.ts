/**
 * Layer (outbound): resolves the request's authority through discovery and attaches the
 * `Service` (endpoints, routes, budget). Authorities discovery does not know are forwarded
 * to the authority itself, in plaintext, as linkerd does for non-mesh destinations.
 *
 * Owns: that resolution step. Does not pick an endpoint (layers/balance.ts).
 */

import { parseHostPort } from "../config.ts";
import type { Discovery } from "../discovery-client.ts";
import { type Layer, ProxyError } from "../handler.ts";
import type { PeakEwmaParams } from "../peak-ewma.ts";
import { Service } from "../service.ts";

/** Direct (non-mesh) services, one per authority, bounded like discovery's watches. */
class DirectServices {
  private readonly services = new Map<string, Service>();
  constructor(
    private readonly ewma: PeakEwmaParams,
    private readonly max: number,
  ) {}
  get(authority: string): Service | undefined {
    const hit = this.services.get(authority);
    if (hit) return hit;
    const hp = parseHostPort(authority) ?? parseHostPort(`${authority}:80`);
    if (!hp) return undefined;
    const service = new Service(authority, this.ewma);
    service.balancer.update([{ address: hp.host, port: hp.port }]);
    if (this.services.size >= this.max) this.services.delete(this.services.keys().next().value as string);
    this.services.set(authority, service);
    return service;
  }
}

export function discoverService(discovery: Discovery | undefined, ewma: PeakEwmaParams, max: number): Layer {
  const direct = new DirectServices(ewma, max);
  return (next) => async (req) => {
    if (req.authority === "") throw new ProxyError("BadRequest", "request has no authority");
    const resolved = discovery ? await discovery.resolve(req.authority) : "direct";
    if (resolved === undefined) {
      throw new ProxyError("DiscoveryUnavailable", `no discovery answer for ${req.authority}`, true);
    }
    const service = resolved === "direct" ? direct.get(req.authority) : resolved;
    if (!service) throw new ProxyError("BadRequest", `authority ${req.authority} is not host:port`);
    req.service = service;
    return next(req);
  };
}
