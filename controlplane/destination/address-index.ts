// Which Service owns a ClusterIP and which pod owns a pod IP, kept from informer events so an
// IP:port lookup is one map read. An address can move (a pod IP is reused by the next pod): the
// newest owner wins, and removing an old owner never removes a newer one's entry. Owns the
// index only; does not decide what a lookup answers (watch-hub.ts, destination-state.ts).
import type { V1Pod, V1Service } from "@kubernetes/client-node";

export class AddressIndex {
  private readonly owners = new Map<string, string>();
  private readonly addresses = new Map<string, string[]>();

  /** `key` (namespace/name) now owns exactly `ips`. */
  set(key: string, ips: readonly string[]): void {
    this.delete(key);
    const normal = ips.map((ip) => ip.toLowerCase()).filter((ip) => ip !== "" && ip !== "none");
    if (normal.length === 0) return;
    this.addresses.set(key, normal);
    for (const ip of normal) this.owners.set(ip, key);
  }

  delete(key: string): void {
    for (const ip of this.addresses.get(key) ?? []) if (this.owners.get(ip) === key) this.owners.delete(ip);
    this.addresses.delete(key);
  }

  owner(ip: string): string | undefined {
    return this.owners.get(ip.toLowerCase());
  }
}

export function clusterIPsOf(service: V1Service): string[] {
  const spec = service.spec;
  if (!spec || spec.type === "ExternalName") return [];
  return spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []);
}

/** A pod's IPs while they are its own: not host network, not finished (its IP is released). */
export function podIPsOf(pod: V1Pod): string[] {
  if (pod.spec?.hostNetwork) return [];
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return [];
  const ips = pod.status?.podIPs?.map((p) => p.ip) ?? [];
  return ips.length > 0 ? ips : pod.status?.podIP ? [pod.status.podIP] : [];
}
