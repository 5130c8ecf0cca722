// The real node's DNS server: CoreDNS with its kubernetes plugin (built from Go modules by
// hack/build-coredns.sh), as a real cluster runs it. A Service name resolves to its ClusterIP, a
// headless Service's to its ready endpoints' pod IPs, `<ip>.<ns>.pod` and reverse names as the
// plugin answers them; every name outside the cluster domain is NXDOMAIN, because nothing is
// ever forwarded upstream (a pod can neither resolve nor leak a query to anything outside).
//
// There is no kube-proxy: a ClusterIP is reachable only through a meshed pod's proxy (the
// capture rules send the connection there; docs/capture.md), and every other packet to the
// Service range is rejected inside the pod (node-network.ts).
//
// Owns: the Corefile and the CoreDNS process (in the cluster's process group, listening on the
// gateway address, UDP and TCP). Does not own: the pods' resolv.conf (the kubelet writes it).
import { mkdirSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ManagedProcess, ProcessGroup } from "./process-group.ts";

export interface ClusterDnsOptions {
  group: ProcessGroup;
  coredns: string;
  dir: string;
  /** Where it listens (UDP and TCP 53): the node's gateway address, the kubelet's clusterDNS. */
  address: string;
  kubeconfig: string;
  clusterDomain: string;
  /** The ready plugin's HTTP port on 127.0.0.1 (200 once the kubernetes plugin has synced). */
  readyPort: number;
}

/** The Corefile: the cluster domain and reverse zones from the API, NXDOMAIN for the rest. */
export function corefile(o: Omit<ClusterDnsOptions, "group" | "coredns" | "dir">): string {
  return `${o.clusterDomain}:53 in-addr.arpa:53 ip6.arpa:53 {
    bind ${o.address}
    errors
    ready 127.0.0.1:${o.readyPort}
    kubernetes ${o.clusterDomain} in-addr.arpa ip6.arpa {
        kubeconfig ${o.kubeconfig}
        pods insecure
        ttl 5
    }
}
.:53 {
    bind ${o.address}
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
`;
}

function readyStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: "127.0.0.1", port, path: "/ready", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Starts CoreDNS and waits until it answers from a synced view of the cluster. */
export async function startClusterDns(o: ClusterDnsOptions): Promise<ManagedProcess> {
  mkdirSync(o.dir, { recursive: true });
  const path = join(o.dir, "Corefile");
  writeFileSync(path, corefile(o));
  const dns = o.group.start({
    name: "coredns",
    command: o.coredns,
    args: ["-conf", path],
    logFile: join(o.dir, "coredns.log"),
  });
  const deadline = Date.now() + 60_000;
  while ((await readyStatus(o.readyPort)) !== 200) {
    if (dns.exitCode() !== undefined)
      throw new Error(`coredns exited (${dns.exitCode()}); see ${dns.logFile}`);
    if (Date.now() > deadline) throw new Error(`coredns not ready after 60 s; see ${dns.logFile}`);
    await sleep(100);
  }
  return dns;
}
