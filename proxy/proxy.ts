/**
 * Wires one proxy process together from its configuration: identity and trust bundle,
 * discovery, clients, the inbound and outbound stacks and listeners, and the admin server;
 * and drains it all gracefully on shutdown.
 *
 * Owns: lifecycle (start, readiness, drain). Does not own any request behaviour (stacks.ts).
 */
import type { Logger } from "pino";
import { createAdminServer, listenAdmin } from "./admin.ts";
import { H1Client } from "./client-h1.ts";
import { H2Client } from "./client-h2.ts";
import type { ProxyConfig } from "./config.ts";
import { Discovery } from "./discovery-client.ts";
import { Listener } from "./listener.ts";
import { LocalIdentity } from "./local-identity.ts";
import { relayToApp, relayToAuthority } from "./opaque.ts";
import { createProxyMetrics, type ProxyMetrics } from "./proxy-metrics.ts";
import { H1Server } from "./server-h1.ts";
import { H2Server } from "./server-h2.ts";
import { inboundStack, outboundStack } from "./stacks.ts";
import { TrustBundle } from "./trust-bundle.ts";

export interface RunningProxy {
  ports: { inbound?: number; outbound?: number; admin: number };
  metrics: ProxyMetrics;
  /** Stops accepting, lets in-flight requests finish (up to the grace period), then closes. */
  drain(): Promise<void>;
}

interface Side {
  listener: Listener;
  h1: H1Server;
  h2: H2Server;
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
          ewma: config.balancer,
        },
        metrics,
        log,
      )
    : undefined;
  const clientLimits = { connectTimeoutMs: limits.connectTimeoutMs, idleTimeoutMs: limits.idleTimeoutMs };
  const meshClients = { h1: new H1Client(identity, clientLimits), h2: new H2Client(identity, clientLimits) };
  const appClients = { h1: new H1Client(undefined, clientLimits), h2: new H2Client(undefined, clientLimits) };
  const sides: Side[] = [];
  const ports: RunningProxy["ports"] = { admin: 0 };

  if (config.inbound) {
    const handler = inboundStack(config.inbound, metrics, appClients);
    const h1 = new H1Server(handler, limits, metrics, "inbound");
    const h2 = new H2Server(handler, limits, metrics, "inbound");
    const listener = new Listener({
      direction: "inbound",
      limits,
      metrics,
      h1,
      h2,
      serverTls: identity,
      allowPlaintext: config.inbound.allowPlaintext,
      opaque: relayToApp(config.inbound.app, limits.connectTimeoutMs),
    });
    ports.inbound = await listener.listen(config.inbound.listen);
    sides.push({ listener, h1, h2 });
  }
  if (config.outbound) {
    const handler = outboundStack(config, metrics, discovery, meshClients);
    const h1 = new H1Server(handler, limits, metrics, "outbound");
    const h2 = new H2Server(handler, limits, metrics, "outbound");
    const opaqueAuthority = config.outbound.opaqueAuthority;
    const listener = new Listener({
      direction: "outbound",
      limits,
      metrics,
      h1,
      h2,
      serverTls: undefined,
      allowPlaintext: true,
      opaque: opaqueAuthority
        ? relayToAuthority(opaqueAuthority, discovery, identity, limits.connectTimeoutMs)
        : undefined,
    });
    ports.outbound = await listener.listen(config.outbound.listen);
    sides.push({ listener, h1, h2 });
  }

  let draining = false;
  const admin = createAdminServer({
    registry: metrics.registry,
    ready: () => !draining && (identity === undefined || identity.ready),
    identity: identity ? () => identity.status() : undefined,
    appProbes: config.admin.appProbes,
  });
  ports.admin = await listenAdmin(admin, config.admin.listen);

  const drain = async () => {
    if (draining) return;
    draining = true;
    await Promise.all(sides.map((s) => s.listener.stopAccepting()));
    for (const s of sides) {
      s.h1.drain();
      s.h2.drain();
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
