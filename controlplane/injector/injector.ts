// `trellis-controlplane injector`: the proxy injector program. Reads the Mesh and namespaces
// through informers, its serving certificate from the Secret Trellis issues (re-read every 30 s,
// so a renewal needs no restart), and serves the admission webhook. Health and metrics on the
// admin port.
import { parseArgs } from "node:util";
import type { KubernetesObject, V1Secret } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { DEFAULT_IMAGE_REGISTRY, meshImages, proxyRepository } from "../../api/image-references.ts";
import {
  ANNOTATIONS,
  CONTROL_PLANE_NAMESPACE,
  fleetCaptureMode,
  fleetProxyVersion,
  type Mesh,
} from "../../api/index.ts";
import type { Manager } from "../../kube/index.ts";
import type { InjectionConfig, InjectionNotice } from "./inject.ts";
import { startWebhookServer } from "./webhook-server.ts";

const SECRET = { apiVersion: "v1", kind: "Secret", plural: "secrets", namespaced: true };
const MESH = { apiVersion: "trellis.dev/v1alpha1", kind: "Mesh", plural: "meshes", namespaced: false };
const NAMESPACE = { apiVersion: "v1", kind: "Namespace", plural: "namespaces", namespaced: false };

export interface InjectorFlags {
  port: number;
  host: string;
  mesh: string;
  tlsSecret: string;
  identityUrl?: string | undefined;
  destinationUrl?: string | undefined;
}

export function parseInjectorFlags(argv: string[]): InjectorFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8443" },
      host: { type: "string", default: "0.0.0.0" },
      mesh: { type: "string", default: "default" },
      "tls-secret": { type: "string", default: `${CONTROL_PLANE_NAMESPACE}/trellis-injector-tls` },
      "identity-url": { type: "string" },
      "destination-url": { type: "string" },
    },
    strict: false,
  });
  return {
    port: Number(values.port),
    host: String(values.host),
    mesh: String(values.mesh),
    tlsSecret: String(values["tls-secret"]),
    identityUrl: values["identity-url"] as string | undefined,
    destinationUrl: values["destination-url"] as string | undefined,
  };
}

export function injectionConfigOf(mesh: Mesh, flags: InjectorFlags): InjectionConfig {
  const spec = mesh.spec;
  const registry = spec.controlPlane?.imageRegistry ?? DEFAULT_IMAGE_REGISTRY;
  return {
    proxyImage: proxyRepository(registry, spec.proxy?.image),
    initImage: meshImages(registry, spec.version).init,
    captureMode: fleetCaptureMode(mesh),
    cniImage: meshImages(registry, spec.version).cni,
    defaultProxyVersion: fleetProxyVersion(mesh),
    logLevel: spec.proxy?.logLevel ?? "info",
    allowUnmeshedClients: (spec.proxy?.unmeshedClients ?? "Allow") === "Allow",
    resources: (spec.proxy?.resources ?? {}) as InjectionConfig["resources"],
    trustDomain: spec.identity?.trustDomain ?? "cluster.local",
    ...(flags.identityUrl ? { identityUrl: flags.identityUrl } : {}),
    ...(flags.destinationUrl ? { destinationUrl: flags.destinationUrl } : {}),
  };
}

async function readTls(manager: Manager, ref: string): Promise<{ cert: string; key: string }> {
  const [namespace = CONTROL_PLANE_NAMESPACE, name = ""] = ref.split("/");
  const secret = await manager.client.get<V1Secret & KubernetesObject>(SECRET, name, namespace);
  const decode = (k: string) => Buffer.from(secret.data?.[k] ?? "", "base64").toString("utf8");
  return { cert: decode("tls.crt"), key: decode("tls.key") };
}

/**
 * Namespace reads in flight at once. Admission reviews come from whatever reaches the webhook's
 * port — the API server, but nothing stops a pod from posting its own — so a review must not buy
 * an API call without bound: past this many, an admission answers from the cache.
 */
export const MAX_NAMESPACE_READS = 16;

/**
 * A namespace's annotations for an admission. The cache answers when it says the namespace is
 * meshed; otherwise the namespace is read from the API server, because the cache lags: a pod
 * created within about a second of `kubectl annotate namespace … trellis.dev/inject=enabled` was
 * admitted without a proxy. Reads of one namespace in flight at once are shared (a burst of pod
 * creations costs one read), at most MAX_NAMESPACE_READS namespaces are read at once, and a
 * failed read falls back to the cache.
 */
export function freshNamespaceAnnotations(
  manager: Manager,
  cache: { get(name: string): KubernetesObject | undefined },
  logger: Logger,
): (namespace: string) => Promise<Record<string, string>> {
  const inFlight = new Map<string, Promise<Record<string, string>>>();
  return (namespace) => {
    const cached = cache.get(namespace)?.metadata?.annotations ?? {};
    if (cached[ANNOTATIONS.inject] === "enabled") return Promise.resolve(cached);
    let read = inFlight.get(namespace);
    if (!read) {
      if (inFlight.size >= MAX_NAMESPACE_READS) return Promise.resolve(cached);
      read = manager.client
        .get<KubernetesObject>(NAMESPACE, namespace)
        .then((ns) => ns.metadata?.annotations ?? {})
        .catch((err: unknown) => {
          logger.warn({ err: String(err), namespace }, "could not read the namespace; using the cache");
          return cached;
        })
        .finally(() => inFlight.delete(namespace));
      inFlight.set(namespace, read);
    }
    return read;
  };
}

/** Events waiting to be written; client-go's recorder queues 1,000 and drops past that. */
export const MAX_QUEUED_EVENTS = 1000;

/**
 * The webhook's Events, written one at a time with at most `maxQueued` waiting; past that they
 * are dropped (`dropped` is told). A review that carries a notice records an Event, and reviews
 * come from whatever reaches the webhook's port, so unqueued each one started its own API write:
 * a client posting reviews made the injector write Events without bound. client-go's recorder
 * has this shape (one writer, a bounded queue that drops).
 */
export function queuedEvents(
  write: (regarding: KubernetesObject, notice: InjectionNotice) => Promise<void>,
  maxQueued: number,
  dropped: () => void,
): (regarding: KubernetesObject, notice: InjectionNotice) => void {
  const queue: Array<[KubernetesObject, InjectionNotice]> = [];
  let writing = false;
  const next = (): void => {
    const item = queue.shift();
    if (!item) {
      writing = false;
      return;
    }
    writing = true;
    write(...item)
      .catch(() => {})
      .finally(next);
  };
  return (regarding, notice) => {
    if (queue.length >= maxQueued) {
      dropped();
      return;
    }
    queue.push([regarding, notice]);
    if (!writing) next();
  };
}

export async function runInjector(
  manager: Manager,
  flags: InjectorFlags,
  logger: Logger,
): Promise<() => Promise<void>> {
  const meshes = manager.informer<Mesh & KubernetesObject>(MESH);
  const namespaces = manager.informer<KubernetesObject>(NAMESPACE);
  const admissions = manager.metrics.registry.counter(
    "trellis_injector_admissions_total",
    "Admission reviews by result.",
  );
  const droppedEvents = manager.metrics.registry.counter(
    "trellis_injector_events_dropped_total",
    "Admission Events not written because MAX_QUEUED_EVENTS were already waiting.",
  );
  await manager.start();
  let tls = await readTls(manager, flags.tlsSecret);
  const webhook = await startWebhookServer({
    port: flags.port,
    host: flags.host,
    tls,
    ctx: {
      config: () => {
        const mesh = meshes.get(flags.mesh);
        return mesh ? injectionConfigOf(mesh, flags) : undefined;
      },
      namespaceAnnotations: freshNamespaceAnnotations(manager, namespaces, logger),
      namespaceLabels: (ns) => namespaces.get(ns)?.metadata?.labels ?? {},
      recordEvent: queuedEvents(
        (regarding, notice) => manager.events.event(regarding, "Warning", notice.reason, notice.message),
        MAX_QUEUED_EVENTS,
        () => droppedEvents.inc({}),
      ),
      logger,
      admissions,
    },
  });
  logger.info({ port: webhook.port }, "injector serving");
  const refresh = setInterval(() => {
    readTls(manager, flags.tlsSecret)
      .then((next) => {
        if (next.cert !== tls.cert) {
          webhook.setCertificate(next);
          tls = next;
          logger.info("serving certificate reloaded");
        }
      })
      .catch((err: unknown) =>
        logger.warn({ err: String(err) }, "could not re-read the serving certificate"),
      );
  }, 30_000);
  return async () => {
    clearInterval(refresh);
    await new Promise<void>((resolve) => webhook.server.close(() => resolve()));
    await manager.stop();
  };
}
