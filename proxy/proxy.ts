/**
 * Wires one proxy process together from its configuration: identity and trust bundle,
 * discovery, clients, the inbound and outbound stacks and listeners, and the admin server;
 * and drains it all gracefully on shutdown.
 *
 * Owns: lifecycle (start, readiness, drain). Does not own any request behaviour (stacks.ts).
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import { createAdminServer, listenAdmin } from "./admin.ts";
import { H1Client } from "./client-h1.ts";
import { H2Client } from "./client-h2.ts";
import { type HostPort, type ProxyConfig, parseHostPort } from "./config.ts";
import { Discovery } from "./discovery-client.ts";
import type { Direction, Handler } from "./handler.ts";
import { InboundTargets } from "./inbound-target.ts";
import { type Capture, type HttpServers, Listener, type ListenerDeps } from "./listener.ts";
import { LocalIdentity } from "./local-identity.ts";
import { MemoryRelease } from "./memory-release.ts";
import { loadNativeAddon, type NativeAddon } from "./native-addon.ts";
import { type OutboundRelayDeps, relayOutbound, relayToApp } from "./opaque.ts";
import { loadOriginalDestinationAddon, originalDestination } from "./original-destination.ts";
import { authorityOf, decideOutbound, ProxyAddresses } from "./outbound-destination.ts";
import { createProxyMetrics, type ProxyMetrics } from "./proxy-metrics.ts";
import { H1Server } from "./server-h1.ts";
import { H2Server } from "./server-h2.ts";
import { forbiddenStack, inboundStack, outboundStack } from "./stacks.ts";
import { TrustBundle } from "./trust-bundle.ts";

export interface RunningProxy {
  ports: { inbound?: number; outbound?: number; admin: number };
  metrics: ProxyMetrics;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), then closes. */
  drain(): Promise<void>;
}

interface Side {
  listener: Listener;
  servers: HttpServers[];
}

/**
 * Capture's IPv6 twin of a listener: nat REDIRECT sends IPv6 connections to `::1` (outbound) or
 * the pod's IPv6 address (inbound), which an IPv4 socket never sees. 127.0.0.1 gets `::1`,
 * 0.0.0.0 gets `::` (IPv6 only, beside the IPv4 socket); any other address has no twin. A pod
 * without IPv6 simply gets none.
 */
async function listenIpv6Twin(deps: ListenerDeps, at: HostPort, log: Logger): Promise<Listener | undefined> {
  const host = at.host === "127.0.0.1" ? "::1" : at.host === "0.0.0.0" ? "::" : undefined;
  if (!host) return undefined;
  const twin = new Listener(deps);
  try {
    await twin.listen({ host, port: at.port }, host === "::");
    return twin;
  } catch (err) {
    log.info({ direction: deps.direction, host, err: (err as Error).message }, "no IPv6 listener");
    return undefined;
  }
}

/**
 * Starts returning free memory to the kernel (memory-release.ts) when the native addon is there;
 * without it (the proxy run from sources, unbuilt) says so once and runs without.
 */
function startMemoryRelease(
  intervalMs: number,
  metrics: ProxyMetrics,
  log: Logger,
): MemoryRelease | undefined {
  if (intervalMs === 0) return undefined;
  let addon: NativeAddon;
  try {
    addon = loadNativeAddon();
  } catch (err) {
    log.info({ err: (err as Error).message }, "free memory is not returned to the kernel: no native addon");
    return undefined;
  }
  const release = new MemoryRelease({
    intervalMs,
    release: () => addon.releaseFreeMemory(),
    onRun: (result) => metrics.memoryReleases.inc([result]),
  });
  release.start();
  return release;
}

export async function startProxy(config: ProxyConfig, log: Logger): Promise<RunningProxy> {
  const metrics = createProxyMetrics();
  const limits = config.limits;
  let bundle: TrustBundle | undefined;
  let identity: LocalIdentity | undefined;
  if (config.identity) {
    bundle = new TrustBundle(
      config.identity.trustBundlePath,
      config.identity.trustBundlePollMs,
      metrics,
      log,
    );
    if (!(await bundle.start()))
      log.warn({ path: config.identity.trustBundlePath }, "no trust bundle yet; polling");
    identity = new LocalIdentity(config.identity, bundle, metrics, log, limits.discoveryTimeoutMs);
    identity.start();
  }
  const discovery = config.destination
    ? new Discovery(
        {
          url: config.destination.url,
          serverIdentity: config.destination.serverIdentity,
          // The destination service verifies proxies: it gets our leaf, so we wait for one.
          security: {
            caPem: () => bundle?.pem,
            clientContext: () => identity?.clientContext(),
            requireClientCertificate: identity !== undefined,
          },
          maxServices: limits.maxServices,
          timeoutMs: limits.discoveryTimeoutMs,
          connectTimeoutMs: limits.connectTimeoutMs,
          pingIntervalMs: limits.discoveryPingIntervalMs,
          pingTimeoutMs: limits.discoveryPingTimeoutMs,
          ewma: config.balancer,
        },
        metrics,
        log,
      )
    : undefined;
  // A new leaf is what a watch waiting to reconnect to the destination service may be missing.
  if (identity && discovery) identity.onLeaf(() => discovery.retrySoon());
  const clientLimits = { connectTimeoutMs: limits.connectTimeoutMs, idleTimeoutMs: limits.idleTimeoutMs };
  const meshClients = { h1: new H1Client(identity, clientLimits), h2: new H2Client(identity, clientLimits) };
  const appClients = { h1: new H1Client(undefined, clientLimits), h2: new H2Client(undefined, clientLimits) };
  const sides: Side[] = [];
  const ports: RunningProxy["ports"] = { admin: 0 };
  // The proxy's own ports are never a destination: not for the application's connections
  // (a loop) and not for a peer's transport header.
  const proxyPorts = new Set(
    [config.inbound?.listen.port, config.outbound?.listen.port, config.admin.listen.port].filter(
      (p): p is number => p !== undefined && p !== 0,
    ),
  );
  const self = new ProxyAddresses(proxyPorts);
  const addon = config.capture ? loadOriginalDestinationAddon() : undefined;
  const readDestination = addon && ((s: Socket) => originalDestination(addon, s));

  const servers = (handler: Handler, direction: Direction, closeEach = false): HttpServers => ({
    h1: new H1Server(handler, limits, metrics, direction, closeEach),
    h2: new H2Server(handler, limits, metrics, direction),
  });
  if (config.inbound) {
    const inbound = config.inbound;
    const http = servers(inboundStack(inbound, metrics, appClients), "inbound");
    // A refused peer gets its 403, then the close.
    const forbidden = servers(forbiddenStack(metrics), "inbound", true);
    const capture: Capture | undefined = readDestination && {
      direction: "inbound",
      originalDestination: readDestination,
      targets: new InboundTargets({ proxyPorts, fallback: inbound.app }),
      plaintextPorts: inbound.plaintextPorts,
    };
    const deps: ListenerDeps = {
      direction: "inbound",
      limits,
      metrics,
      http,
      forbidden,
      serverTls: identity,
      policy: inbound,
      // Without capture every connection is for the application; with capture this is the port
      // of connections that name none (capture.targets decides the rest).
      targetPort: () => inbound.app?.port,
      opaquePorts: inbound.opaquePorts,
      opaqueFallback: false,
      opaque: relayToApp(inbound.app, limits.connectTimeoutMs, (tls, peer) =>
        metrics.tcpForwarded.inc(["inbound", tls, peer]),
      ),
      capture,
    };
    const listener = new Listener(deps);
    ports.inbound = await listener.listen(inbound.listen);
    proxyPorts.add(ports.inbound);
    sides.push({ listener, servers: [http, forbidden] });
    if (capture) {
      const twin = await listenIpv6Twin(deps, { ...inbound.listen, port: ports.inbound }, log);
      if (twin) sides.push({ listener: twin, servers: [http, forbidden] });
    }
  }
  if (config.outbound) {
    const http = servers(outboundStack(config, metrics, discovery, meshClients, self), "outbound");
    const opaqueAuthority = config.outbound.opaqueAuthority;
    const explicitOpaque = opaqueAuthority ? parseHostPort(opaqueAuthority) : undefined;
    const relayDeps: OutboundRelayDeps = {
      discovery,
      clientTls: identity,
      timeoutMs: limits.connectTimeoutMs,
      forwarded: (tls, peer) => metrics.tcpForwarded.inc(["outbound", tls, peer]),
    };
    const outboundOpaquePorts = config.outbound.opaquePorts;
    const capture: Capture | undefined = readDestination && {
      direction: "outbound",
      decide: (socket) =>
        decideOutbound(socket, {
          originalDestination: readDestination,
          self,
          opaquePorts: outboundOpaquePorts,
          discovery,
        }),
    };
    const deps: ListenerDeps = {
      direction: "outbound",
      limits,
      metrics,
      http,
      forbidden: undefined,
      serverTls: undefined,
      policy: undefined,
      targetPort: () => undefined,
      opaquePorts: config.outbound.opaquePorts,
      opaqueFallback: opaqueAuthority !== undefined,
      // Opaque TCP goes where the application was going (capture), else to opaqueAuthority.
      opaque: (socket, prefix, conn) => {
        const dst = conn.originalDestination;
        if (dst) return relayOutbound(socket, prefix, authorityOf(dst), dst, relayDeps);
        if (opaqueAuthority && explicitOpaque) {
          return relayOutbound(socket, prefix, opaqueAuthority, explicitOpaque, relayDeps);
        }
        metrics.tcpRejected.inc(["outbound", "opaque_not_configured"]);
        socket.destroy();
      },
      capture,
    };
    const listener = new Listener(deps);
    ports.outbound = await listener.listen(config.outbound.listen);
    proxyPorts.add(ports.outbound);
    sides.push({ listener, servers: [http] });
    if (capture) {
      const twin = await listenIpv6Twin(deps, { ...config.outbound.listen, port: ports.outbound }, log);
      if (twin) sides.push({ listener: twin, servers: [http] });
    }
  }

  let draining = false;
  const admin = createAdminServer({
    registry: metrics.registry,
    ready: () => !draining && (identity === undefined || identity.ready),
    degradations: () =>
      [identity?.degradation(), bundle?.degradation(), discovery?.degradation()].filter(
        (d): d is string => d !== undefined,
      ),
    identity: identity ? () => identity.status() : undefined,
    appProbes: config.admin.appProbes,
  });
  ports.admin = await listenAdmin(admin, config.admin.listen);
  proxyPorts.add(ports.admin);
  const memoryRelease = startMemoryRelease(limits.memoryReleaseIntervalMs, metrics, log);

  const drain = async () => {
    if (draining) return;
    draining = true;
    memoryRelease?.stop();
    await Promise.all(sides.map((s) => s.listener.stopAccepting()));
    for (const s of sides) {
      for (const { h1, h2 } of s.servers) {
        h1.drain();
        h2.drain();
      }
    }
    const deadline = Date.now() + limits.shutdownGraceMs;
    while (Date.now() < deadline && sides.some((s) => s.listener.openConnections > 0)) {
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const s of sides) s.listener.destroyAll();
    for (const c of [meshClients, appClients]) {
      c.h1.close();
      c.h2.close();
    }
    discovery?.close();
    identity?.stop();
    bundle?.stop();
    admin.closeAllConnections();
    await new Promise((r) => admin.close(() => r(undefined)));
  };
  return { ports, metrics, drain };
}
