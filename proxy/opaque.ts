/**
 * Opaque TCP pass-through for traffic that is not HTTP: bytes are relayed unchanged, over
 * mTLS (ALPN `trellis.opaque`) to a meshed peer or plaintext otherwise.
 *
 * Owns: connecting the upstream leg and relaying with backpressure and idle/half-close
 * handling. Does not detect protocols (detect.ts).
 */
import net, { type Socket } from "node:net";
import tls from "node:tls";
import type { HostPort } from "./config.ts";
import type { Discovery } from "./discovery-client.ts";
import { type ClientTls, opaqueAlpn } from "./upstream.ts";

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

/** Inbound: relay to the local application. */
export function relayToApp(app: HostPort, timeoutMs: number) {
  return (client: Socket, prefix: Buffer): void => {
    client.pause();
    connectPlain(
      app,
      timeoutMs,
      (upstream) => {
        if (prefix.length > 0) upstream.write(prefix);
        relay(client, upstream);
        client.resume();
      },
      () => client.destroy(),
    );
  };
}

/** Outbound: relay to an endpoint of `authority`, over mTLS when the endpoint is meshed. */
export function relayToAuthority(
  authority: string,
  discovery: Discovery | undefined,
  clientTls: ClientTls | undefined,
  timeoutMs: number,
) {
  return async (client: Socket, prefix: Buffer): Promise<void> => {
    client.pause();
    const resolved = discovery ? await discovery.resolve(authority) : "direct";
    let target: { host: string; port: number; identity?: string } | undefined;
    if (resolved === "direct") {
      const [host, port] = [
        authority.slice(0, authority.lastIndexOf(":")),
        Number(authority.slice(authority.lastIndexOf(":") + 1)),
      ];
      target = { host, port };
    } else if (resolved) {
      const e = resolved.balancer.pick();
      target = e && { host: e.address, port: e.port, identity: e.identity };
    }
    const context = clientTls?.clientContext();
    if (!target || client.destroyed || (target.identity !== undefined && (!context || !clientTls))) {
      client.destroy();
      return;
    }
    const ready = (upstream: Socket) => {
      if (prefix.length > 0) upstream.write(prefix);
      relay(client, upstream);
      client.resume();
    };
    if (target.identity === undefined) {
      connectPlain(target, timeoutMs, ready, () => client.destroy());
      return;
    }
    const upstream = tls.connect({
      host: target.host,
      port: target.port,
      secureContext: context,
      ALPNProtocols: [opaqueAlpn],
      checkServerIdentity: clientTls!.verifierFor(target.identity),
    });
    const timer = setTimeout(() => upstream.destroy(), timeoutMs);
    upstream.once("secureConnect", () => {
      clearTimeout(timer);
      ready(upstream);
    });
    upstream.once("error", () => {
      clearTimeout(timer);
      client.destroy();
    });
  };
}
