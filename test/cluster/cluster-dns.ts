// The real node's DNS server: answers `<service>.<namespace>.svc[.cluster.local]` A queries with
// the ready endpoint addresses of that Service's EndpointSlices (watched through the API), and
// NXDOMAIN for every other name. It never forwards upstream, so a pod cannot resolve (or leak
// queries to) anything outside the cluster. With no kube-proxy, a Service name resolves to pod
// IPs, as a headless Service would.
//
// Owns: the UDP and TCP listeners on <gateway IP>:53, the DNS wire format subset it needs, and
// the EndpointSlice informer. Does not own: the pods' resolv.conf (the kubelet writes it).
import { createSocket, type Socket } from "node:dgram";
import { createServer, type Server } from "node:net";
import { DiscoveryV1Api, type KubeConfig, makeInformer, type V1EndpointSlice } from "@kubernetes/client-node";

const TYPE_A = 1;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;
const TTL_SECONDS = 5;

export interface DnsQuestion {
  id: number;
  flags: number;
  name: string;
  type: number;
  /** The question section as received (name, type, class), echoed in the answer. */
  raw: Buffer;
}

/** Parses the first question of a query; undefined for anything malformed. */
export function parseQuery(msg: Buffer): DnsQuestion | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let offset = 12;
  while (offset < msg.length) {
    const length = msg[offset] ?? 0;
    if (length === 0) break;
    if (length > 63 || offset + 1 + length > msg.length) return undefined;
    labels.push(msg.subarray(offset + 1, offset + 1 + length).toString("latin1"));
    offset += 1 + length;
  }
  if (offset + 5 > msg.length) return undefined;
  const type = msg.readUInt16BE(offset + 1);
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: labels.join(".").toLowerCase(),
    type,
    raw: msg.subarray(12, offset + 5),
  };
}

/** Builds the answer: A records for `addresses`, or an empty answer/NXDOMAIN per `rcode`. */
export function buildResponse(q: DnsQuestion, rcode: number, addresses: string[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode, AA, the query's RD, and the response code.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7800) | 0x0400 | (q.flags & 0x0100) | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((address) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(1, 4); // class IN
    rr.writeUInt32BE(TTL_SECONDS, 6);
    rr.writeUInt16BE(4, 10);
    address.split(".").forEach((part, i) => {
      rr[12 + i] = Number(part);
    });
    return rr;
  });
  return Buffer.concat([header, q.raw, ...answers]);
}

/** `<service>.<namespace>.svc[.<domain>]` → "namespace/service", or undefined. */
export function serviceKeyOf(name: string, clusterDomain: string): string | undefined {
  const trimmed = name.replace(/\.$/, "");
  const base = trimmed.endsWith(`.svc.${clusterDomain}`)
    ? trimmed.slice(0, -`.${clusterDomain}`.length)
    : trimmed;
  const parts = base.split(".");
  if (parts.length !== 3 || parts[2] !== "svc" || !parts[0] || !parts[1]) return undefined;
  return `${parts[1]}/${parts[0]}`;
}

/** Ready IPv4 addresses per "namespace/service", from EndpointSlices. */
export class ServiceEndpoints {
  private readonly slices = new Map<string, { service: string; addresses: string[] }>();

  upsert(slice: V1EndpointSlice): void {
    const service = slice.metadata?.labels?.["kubernetes.io/service-name"];
    const key = `${slice.metadata?.namespace}/${slice.metadata?.name}`;
    if (!service || slice.addressType !== "IPv4") {
      this.slices.delete(key);
      return;
    }
    const addresses = (slice.endpoints ?? [])
      .filter((e) => e.conditions?.ready !== false)
      .flatMap((e) => e.addresses);
    this.slices.set(key, { service: `${slice.metadata?.namespace}/${service}`, addresses });
  }

  remove(slice: V1EndpointSlice): void {
    this.slices.delete(`${slice.metadata?.namespace}/${slice.metadata?.name}`);
  }

  addresses(serviceKey: string): string[] {
    const all = [...this.slices.values()].filter((s) => s.service === serviceKey).flatMap((s) => s.addresses);
    return [...new Set(all)].sort();
  }
}

/** The answer to one query, a pure function of the endpoints known now. */
export function answer(msg: Buffer, endpoints: ServiceEndpoints, clusterDomain: string): Buffer | undefined {
  const q = parseQuery(msg);
  if (!q) return undefined;
  if ((q.flags & 0x7800) !== 0) return buildResponse(q, RCODE_NOTIMP, []);
  const key = serviceKeyOf(q.name, clusterDomain);
  const addresses = key ? endpoints.addresses(key) : [];
  if (addresses.length === 0) return buildResponse(q, RCODE_NXDOMAIN, []);
  // The name exists: A gets the addresses, other types (AAAA, ...) an empty NOERROR answer.
  return buildResponse(q, 0, q.type === TYPE_A ? addresses : []);
}

export interface ClusterDns {
  stop(): Promise<void>;
}

/** Starts the informer and the UDP + TCP listeners on `address`:`port` (53 by default). */
export async function startClusterDns(
  kc: KubeConfig,
  address: string,
  clusterDomain = "cluster.local",
  port = 53,
): Promise<ClusterDns> {
  const endpoints = new ServiceEndpoints();
  const api = kc.makeApiClient(DiscoveryV1Api);
  const informer = makeInformer(kc, "/apis/discovery.k8s.io/v1/endpointslices", () =>
    api.listEndpointSliceForAllNamespaces(),
  );
  informer.on("add", (s) => endpoints.upsert(s));
  informer.on("update", (s) => endpoints.upsert(s));
  informer.on("delete", (s) => endpoints.remove(s));
  let stopped = false;
  informer.on("error", () => {
    if (!stopped) setTimeout(() => void informer.start().catch(() => {}), 1000).unref();
  });
  await informer.start();

  const udp: Socket = createSocket("udp4");
  udp.on("message", (msg, peer) => {
    const reply = answer(msg, endpoints, clusterDomain);
    if (reply) udp.send(reply, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(port, address, () => resolve());
  });
  udp.unref();

  const tcp: Server = createServer((conn) => {
    let buffered = Buffer.alloc(0);
    conn.on("data", (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const length = buffered.readUInt16BE(0);
        const reply = answer(buffered.subarray(2, 2 + length), endpoints, clusterDomain);
        buffered = buffered.subarray(2 + length);
        if (!reply) return void conn.destroy();
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(reply.length);
        conn.write(Buffer.concat([prefix, reply]));
      }
    });
    conn.on("error", () => conn.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(port, address, () => resolve());
  });
  tcp.unref();

  return {
    async stop() {
      stopped = true;
      await informer.stop();
      udp.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}
