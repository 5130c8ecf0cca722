/**
 * Terminal handlers: send the request to its upstream over the client matching its HTTP
 * version — the balanced endpoint (outbound) or the local application (inbound).
 *
 * Owns: version dispatch. Does not pool connections (client-h1.ts, client-h2.ts).
 */
import type { H1Client } from "../client-h1.ts";
import type { H2Client } from "../client-h2.ts";
import type { HostPort } from "../config.ts";
import { type Handler, ProxyError } from "../handler.ts";
import type { UpstreamTarget } from "../upstream.ts";

export interface HttpClients {
  h1: H1Client;
  h2: H2Client;
}

export function forwardToEndpoint(clients: HttpClients): Handler {
  return (req) => {
    const e = req.endpoint;
    if (!e) return Promise.reject(new ProxyError("NoEndpoints", "no endpoint chosen", true));
    const target: UpstreamTarget = { host: e.address, port: e.port, identity: e.identity };
    return req.version === "h2" ? clients.h2.forward(req, target) : clients.h1.forward(req, target);
  };
}

export function forwardToApp(clients: HttpClients, app: HostPort): Handler {
  const target: UpstreamTarget = { host: app.host, port: app.port, identity: undefined };
  return (req) => (req.version === "h2" ? clients.h2.forward(req, target) : clients.h1.forward(req, target));
}
