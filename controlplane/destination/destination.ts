// `trellis-controlplane destination`: the discovery service proxies watch. Reads Services,
// EndpointSlices, Pods and ServiceProfiles through shared informers and streams each watched
// authority's state (docs/destination.md). Serves mutual TLS: its certificate and the trust
// bundle proxies are verified against are reloaded from their files in place. Health and
// metrics on the admin port.
import { parseArgs } from "node:util";
import type { KubernetesObject, V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ServiceProfile } from "../../api/index.ts";
import type { Manager } from "../../kube/index.ts";
import { AddressIndex, clusterIPsOf, podIPsOf } from "./address-index.ts";
import { parseAuthority } from "./authority.ts";
import { startDestinationServer } from "./destination-server.ts";
import { ServingTls } from "./serving-tls.ts";
import { type ClusterView, WatchHub } from "./watch-hub.ts";

const SERVICE = { apiVersion: "v1", kind: "Service", plural: "services", namespaced: true };
const SLICE = {
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  plural: "endpointslices",
  namespaced: true,
};
const POD = { apiVersion: "v1", kind: "Pod", plural: "pods", namespaced: true };
const PROFILE = {
  apiVersion: "trellis.dev/v1alpha1",
  kind: "ServiceProfile",
  plural: "serviceprofiles",
  namespaced: true,
};
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export interface DestinationFlags {
  port: number;
  host: string;
  trustDomain: string;
  clusterDomain: string;
  plaintext: boolean;
  tlsCertFile: string | undefined;
  tlsKeyFile: string | undefined;
  /** PEM trust anchors client proxies' chains must verify against (the mesh trust bundle). */
  trustBundleFile: string;
  /** How often the certificate, key and bundle files are checked for changes. */
  tlsReloadMs: number;
  maxStreams: number;
  maxAuthorities: number;
  maxBufferedBytes: number;
  coalesceMs: number;
}

export function parseDestinationFlags(argv: string[]): DestinationFlags {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: "string", default: "8086" },
      host: { type: "string", default: "0.0.0.0" },
      "trust-domain": { type: "string", default: "cluster.local" },
      "cluster-domain": { type: "string", default: "cluster.local" },
      plaintext: { type: "boolean", default: false },
      "tls-cert-file": { type: "string" },
      "tls-key-file": { type: "string" },
      "trust-bundle-file": { type: "string", default: "/var/run/trellis/trust/ca-bundle.crt" },
      "tls-reload-ms": { type: "string", default: "1000" },
      "max-streams": { type: "string", default: "10000" },
      "max-authorities": { type: "string", default: "5000" },
      "max-buffered-bytes": { type: "string", default: String(1024 * 1024) },
      "coalesce-ms": { type: "string", default: "100" },
    },
    strict: false,
  });
  const flags: DestinationFlags = {
    port: Number(values.port),
    host: String(values.host),
    trustDomain: String(values["trust-domain"]),
    clusterDomain: String(values["cluster-domain"]),
    plaintext: values.plaintext === true,
    tlsCertFile: values["tls-cert-file"] as string | undefined,
    tlsKeyFile: values["tls-key-file"] as string | undefined,
    trustBundleFile: String(values["trust-bundle-file"]),
    tlsReloadMs: Number(values["tls-reload-ms"]),
    maxStreams: Number(values["max-streams"]),
    maxAuthorities: Number(values["max-authorities"]),
    maxBufferedBytes: Number(values["max-buffered-bytes"]),
    coalesceMs: Number(values["coalesce-ms"]),
  };
  if (!flags.plaintext && !(flags.tlsCertFile && flags.tlsKeyFile)) {
    throw new Error("destination: give --tls-cert-file and --tls-key-file, or --plaintext");
  }
  return flags;
}

export async function runDestination(
  manager: Manager,
  flags: DestinationFlags,
  logger: Logger,
): Promise<() => Promise<void>> {
  const services = manager.informer<V1Service & KubernetesObject>(SERVICE);
  const slices = manager.informer<V1EndpointSlice & KubernetesObject>(SLICE);
  const pods = manager.informer<V1Pod & KubernetesObject>(POD);
  const profiles = manager.informer<ServiceProfile & KubernetesObject>(PROFILE);
  const serviceIPs = new AddressIndex();
  const podIPs = new AddressIndex();
  const view: ClusterView = {
    service: (ns, name) => services.get(`${ns}/${name}`),
    slices: (ns, name) => slices.list(ns).filter((s) => s.metadata?.labels?.[SERVICE_NAME_LABEL] === name),
    pod: (ns, name) => pods.get(`${ns}/${name}`),
    profile: (ns, name) => profiles.get(`${ns}/${name}.${ns}.svc.${flags.clusterDomain}`),
    serviceByClusterIP: (ip) => {
      const key = serviceIPs.owner(ip);
      if (!key) return undefined;
      const [namespace = "", name = ""] = key.split("/");
      return { namespace, name };
    },
    podByIP: (ip) => {
      const key = podIPs.owner(ip);
      return key ? pods.get(key) : undefined;
    },
  };
  const hub = new WatchHub({
    view,
    trustDomain: flags.trustDomain,
    coalesceMs: flags.coalesceMs,
    maxAuthorities: flags.maxAuthorities,
    onError: (err, topic) =>
      logger.error({ err: String(err), topic }, "could not compute a destination update"),
  });
  const on = <T extends KubernetesObject>(changed: (obj: T) => void) => ({
    onAdd: changed,
    onUpdate: (_old: T, obj: T) => changed(obj),
    onDelete: changed,
  });
  const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
  // The indexes first, so the hub's recompute sees the new owner of an address.
  services.addEventHandler({
    onAdd: (s) => serviceIPs.set(keyOf(s), clusterIPsOf(s)),
    onUpdate: (_old, s) => serviceIPs.set(keyOf(s), clusterIPsOf(s)),
    onDelete: (s) => serviceIPs.delete(keyOf(s)),
  });
  pods.addEventHandler({
    onAdd: (p) => podIPs.set(keyOf(p), podIPsOf(p)),
    onUpdate: (_old, p) => podIPs.set(keyOf(p), podIPsOf(p)),
    onDelete: (p) => podIPs.delete(keyOf(p)),
  });
  services.addEventHandler(
    on((s) => hub.serviceChanged(s.metadata?.namespace ?? "", s.metadata?.name ?? "")),
  );
  slices.addEventHandler(
    on((s) => {
      const name = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      if (name) hub.serviceChanged(s.metadata?.namespace ?? "", name);
    }),
  );
  pods.addEventHandler(on((p) => hub.namespaceChanged(p.metadata?.namespace ?? "")));
  profiles.addEventHandler(
    on((p) => {
      const target = parseAuthority(`${p.metadata?.name ?? ""}:1`, flags.clusterDomain);
      if (target) hub.serviceChanged(target.namespace, target.name);
    }),
  );
  const streams = manager.metrics.registry.gauge("trellis_destination_streams", "Open watch streams.");
  const requests = manager.metrics.registry.counter(
    "trellis_destination_requests_total",
    "Watch requests by result.",
  );
  const registry = manager.metrics.registry;
  const clients = registry.counter(
    "trellis_destination_client_connections_total",
    "Client connections by result: Accepted, or why the client was refused.",
  );
  // Read before the informers start: a missing or broken file should fail fast.
  const serving =
    flags.plaintext || !flags.tlsCertFile || !flags.tlsKeyFile
      ? undefined
      : new ServingTls(
          { certFile: flags.tlsCertFile, keyFile: flags.tlsKeyFile, trustBundleFile: flags.trustBundleFile },
          {
            reloads: registry.counter(
              "trellis_destination_tls_reloads_total",
              "Reloads of the serving certificate and trust bundle, by result.",
            ),
            expiry: registry.gauge(
              "trellis_destination_serving_certificate_expiration_timestamp_seconds",
              "When the destination service's serving certificate expires (Unix seconds).",
            ),
          },
          logger,
        );
  await manager.start();
  const server = await startDestinationServer({
    port: flags.port,
    host: flags.host,
    tls: serving?.material,
    trustDomain: flags.trustDomain,
    clusterDomain: flags.clusterDomain,
    maxStreams: flags.maxStreams,
    maxBufferedBytes: flags.maxBufferedBytes,
    hub,
    logger,
    streams,
    requests,
    clients,
  });
  serving?.watch(flags.tlsReloadMs, (material) => server.setTls(material));
  return async () => {
    serving?.stop();
    hub.close();
    await server.close();
    await manager.stop();
  };
}
