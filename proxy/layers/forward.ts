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
    const target: UpstreamTarget = {
      host: e.address,
      port: e.port,
      identity: e.identity,
      targetPort: e.targetPort,
    };
    return req.version === "h2" ? clients.h2.forward(req, target) : clients.h1.forward(req, target);
  };
}

/** The connection's target (capture mode), else the configured application. */
export function forwardToApp(clients: HttpClients, app: HostPort | undefined): Handler {
  const fixed: UpstreamTarget | undefined = app && { host: app.host, port: app.port, identity: undefined };
  return (req) => {
    const t = req.conn.target;
    const target = t ? { host: t.host, port: t.port, identity: undefined } : fixed;
    if (!target)
      return Promise.reject(new ProxyError("NoEndpoints", "no application port for this connection", true));
    return req.version === "h2" ? clients.h2.forward(req, target) : clients.h1.forward(req, target);
  };
}
