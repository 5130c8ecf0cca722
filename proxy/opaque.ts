/**
 * Opaque TCP pass-through for traffic that is not HTTP: bytes are relayed unchanged, over
 * mTLS (ALPN `trellis.opaque`, or the transport header naming the target port and "opaque")
 * to a meshed peer, or plaintext otherwise.
 *
 * Owns: connecting the upstream leg and relaying with backpressure and idle/half-close
 * handling. Does not detect protocols (detect.ts).
 */
import net, { type Socket } from "node:net";
import tls from "node:tls";
import type { HostPort } from "./config.ts";
import type { Discovery } from "./discovery-client.ts";
import type { ConnectionContext } from "./handler.ts";
import { alpnFor, type ClientTls, opaqueAlpn, startSession, type UpstreamTarget } from "./upstream.ts";

/** Relays both ways; when either side fails or closes, both are closed. */
export function relay(a: Socket, b: Socket): void {
  const closeBoth = () => {
    a.destroy();
    b.destroy();
  };
  a.on("error", closeBoth);
  b.on("error", closeBoth);
  a.on("close", () => b.destroySoon());
  b.on("close", () => a.destroySoon());
  a.pipe(b);
  b.pipe(a);
}

function connectPlain(
  target: HostPort,
  timeoutMs: number,
  onReady: (s: Socket) => void,
  onFail: () => void,
): void {
  const s = net.connect({ host: target.host, port: target.port, noDelay: true });
  let connected = false;
  const timer = setTimeout(() => s.destroy(), timeoutMs);
  s.once("connect", () => {
    connected = true;
    clearTimeout(timer);
    onReady(s);
  });
  s.on("error", () => {});
  s.once("close", () => {
    clearTimeout(timer);
    if (!connected) onFail();
  });
}

/**
 * Inbound: relay to the connection's target (capture mode), else the local application;
 * `forwarded` counts each relayed connection by its TLS status and the peer's identity.
 */
export function relayToApp(
  app: HostPort | undefined,
  timeoutMs: number,
  forwarded: (tls: string, peer: string) => void = () => {},
) {
  return (client: Socket, prefix: Buffer, conn: ConnectionContext): void => {
    const target = conn.target ?? app;
    if (!target) {
      client.destroy();
      return;
    }
    client.pause();
    connectPlain(
      target,
      timeoutMs,
      (upstream) => {
        forwarded(conn.tls, conn.peerIdentity ?? "");
        if (prefix.length > 0) upstream.write(prefix);
        relay(client, upstream);
        client.resume();
      },
      () => client.destroy(),
    );
  };
}

export interface OutboundRelayDeps {
  discovery: Discovery | undefined;
  clientTls: ClientTls | undefined;
  timeoutMs: number;
  /** Counts each relayed connection by TLS ("mtls" or "none") and peer identity. */
  forwarded: (tls: "mtls" | "none", peer: string) => void;
}

/** Endpoints an outbound opaque connection tries before it gives up (never after a byte is relayed). */
export const OPAQUE_CONNECT_ATTEMPTS = 3;

/**
 * Outbound: relays to the destination `authority` names — an endpoint of its Service (mTLS
 * with the transport header when the endpoint is meshed, plaintext otherwise), or, when the
 * destination service does not know it, `direct` itself in plaintext. Until the upstream leg is
 * up no byte has been relayed either way (the client's first bytes wait in `prefix`, a server
 * that speaks first has not spoken), so a connect or handshake that fails or passes its deadline
 * is tried again on another endpoint, up to OPAQUE_CONNECT_ATTEMPTS; then the client is closed,
 * never left waiting.
 */
export async function relayOutbound(
  client: Socket,
  prefix: Buffer,
  authority: string,
  direct: HostPort,
  deps: OutboundRelayDeps,
): Promise<void> {
  client.pause();
  const resolved = deps.discovery ? await deps.discovery.resolve(authority) : "direct";
  const clientTls = deps.clientTls;
  const context = clientTls?.clientContext();
  const tried = new Set<string>();
  const attempt = (left: number): void => {
    let target: UpstreamTarget | undefined;
    if (resolved === "direct") target = { host: direct.host, port: direct.port, identity: undefined };
    else if (resolved) {
      const e = resolved.balancer.pick(tried);
      if (e) tried.add(e.key);
      target = e && { host: e.address, port: e.port, identity: e.identity, targetPort: e.targetPort };
    }
    if (!target || client.destroyed || (target.identity !== undefined && (!context || !clientTls))) {
      client.destroy();
      return;
    }
    const next = () => {
      if (left > 1 && !client.destroyed) attempt(left - 1);
      else client.destroy();
    };
    const ready = (upstream: Socket) => {
      deps.forwarded(target.identity === undefined ? "none" : "mtls", target.identity ?? "");
      if (prefix.length > 0) upstream.write(prefix);
      relay(client, upstream);
      client.resume();
    };
    if (target.identity === undefined) {
      connectPlain(target, deps.timeoutMs, ready, next);
      return;
    }
    const upstream = tls.connect({
      host: target.host,
      port: target.port,
      secureContext: context,
      ALPNProtocols: alpnFor(target, opaqueAlpn),
      checkServerIdentity: clientTls!.verifierFor(target.identity),
    });
    // With an error, so that the "error" handler below runs: a bare destroy() emits none.
    const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), deps.timeoutMs);
    let connected = false;
    upstream.once("secureConnect", () => {
      connected = true;
      clearTimeout(timer);
      if (!startSession(upstream, target, "opaque", opaqueAlpn)) {
        upstream.destroy();
        client.destroy();
        return;
      }
      ready(upstream);
    });
    upstream.once("error", () => {
      clearTimeout(timer);
      // Before the handshake: another endpoint. After: the relay's own error handling closes both.
      if (!connected) next();
      else client.destroy();
    });
  };
  attempt(OPAQUE_CONNECT_ATTEMPTS);
}
