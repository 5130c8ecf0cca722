// The subscriptions of the destination service: one topic per watched Service port (by name or
// by ClusterIP, the same topic) or pod IP:port, each with its subscribers (open streams) and the
// last update sent. Cluster changes mark topics dirty;
// a timer coalesces a burst (a rollout touches slices and pods many times) into one recompute,
// and a line goes out only when the state really changed. Owns topics, coalescing and
// fan-out; does not own HTTP (destination-server.ts) or the mapping itself (destination-state.ts).
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import type { ServiceProfile } from "../../api/index.ts";
import type { AddressAuthority, ServiceAuthority } from "./authority.ts";
import { type DiscoveryUpdate, destinationUpdate, podUpdate, servicePortOf } from "./destination-state.ts";

/** Read access to the informer caches the hub needs. */
export interface ClusterView {
  service(namespace: string, name: string): V1Service | undefined;
  slices(namespace: string, service: string): V1EndpointSlice[];
  pod(namespace: string, name: string): V1Pod | undefined;
  profile(namespace: string, service: string): ServiceProfile | undefined;
  /** The Service whose ClusterIP (any of its clusterIPs) is `ip`. */
  serviceByClusterIP(ip: string): { namespace: string; name: string } | undefined;
  /** The running pod whose IP (any of its podIPs) is `ip`; host-network pods are not indexed. */
  podByIP(ip: string): V1Pod | undefined;
}

/** One open stream, as the hub sees it. */
export interface Subscriber {
  /** Writes one line; returns false when the subscriber was dropped (slow or gone). */
  send(line: string): boolean;
  /** Ends the stream (the Service disappeared): the proxy reconnects and learns 404. */
  end(): void;
}

type TopicTarget = ({ kind: "service" } & ServiceAuthority) | ({ kind: "pod" } & AddressAuthority);

interface Topic {
  target: TopicTarget;
  subscribers: Set<Subscriber>;
  lastLine: string;
}

export interface WatchHubOptions {
  view: ClusterView;
  trustDomain: string;
  coalesceMs: number;
  maxAuthorities: number;
  onError: (err: unknown, topic: string) => void;
}

export type SubscribeResult =
  | { ok: true; line: string; unsubscribe: () => void }
  | { ok: false; reason: "NotFound" | "TooManyAuthorities" };

const topicKey = (t: TopicTarget) =>
  t.kind === "service" ? `${t.namespace}/${t.name}:${t.port}` : `pod ${t.ip}:${t.port}`;

export class WatchHub {
  private readonly topics = new Map<string, Topic>();
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Lines sent to subscribers after the first, for tests and metrics. */
  updatesSent = 0;

  constructor(private readonly options: WatchHubOptions) {}

  get authorityCount(): number {
    return this.topics.size;
  }

  subscribe(named: ServiceAuthority, subscriber: Subscriber): SubscribeResult {
    return this.subscribeTopic({ kind: "service", ...named }, subscriber);
  }

  /** An IP:port: a Service's ClusterIP (the Service's own topic), else a pod's IP, else NotFound. */
  subscribeAddress(address: AddressAuthority, subscriber: Subscriber): SubscribeResult {
    const service = this.options.view.serviceByClusterIP(address.ip);
    if (service) return this.subscribeTopic({ kind: "service", ...service, port: address.port }, subscriber);
    return this.subscribeTopic({ kind: "pod", ...address }, subscriber);
  }

  private subscribeTopic(target: TopicTarget, subscriber: Subscriber): SubscribeResult {
    const line = this.lineFor(target);
    if (line === undefined) return { ok: false, reason: "NotFound" };
    const key = topicKey(target);
    let topic = this.topics.get(key);
    if (!topic) {
      if (this.topics.size >= this.options.maxAuthorities) return { ok: false, reason: "TooManyAuthorities" };
      topic = { target, subscribers: new Set(), lastLine: line };
      this.topics.set(key, topic);
    }
    topic.subscribers.add(subscriber);
    const owner = topic;
    return {
      ok: true,
      line: topic.lastLine,
      unsubscribe: () => {
        owner.subscribers.delete(subscriber);
        if (owner.subscribers.size === 0 && this.topics.get(key) === owner) this.topics.delete(key);
      },
    };
  }

  /** A Service, its slices or its profile changed. */
  serviceChanged(namespace: string, name: string): void {
    for (const [key, { target: t }] of this.topics) {
      if (t.kind === "service" && t.namespace === namespace && t.name === name) this.markDirty(key);
    }
  }

  /**
   * A pod changed: its identity or mesh membership may change any Service of its namespace, and
   * any pod IP topic (an IP is reused by the next pod that gets it, in any namespace).
   */
  namespaceChanged(namespace: string): void {
    for (const [key, { target: t }] of this.topics) {
      if (t.kind === "pod" || t.namespace === namespace) this.markDirty(key);
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private markDirty(key: string): void {
    this.dirty.add(key);
    this.timer ??= setTimeout(() => this.flush(), this.options.coalesceMs);
  }

  private flush(): void {
    this.timer = undefined;
    const keys = [...this.dirty];
    this.dirty.clear();
    for (const key of keys) {
      const topic = this.topics.get(key);
      if (!topic) continue;
      try {
        this.refresh(key, topic);
      } catch (err) {
        this.options.onError(err, key);
      }
    }
  }

  private refresh(key: string, topic: Topic): void {
    const line = this.lineFor(topic.target);
    if (line === undefined) {
      this.topics.delete(key);
      for (const s of topic.subscribers) s.end();
      return;
    }
    if (line === topic.lastLine) return;
    topic.lastLine = line;
    for (const s of [...topic.subscribers]) if (s.send(line)) this.updatesSent++;
  }

  /** The current line of a topic, or undefined when its Service port or pod is gone. */
  private lineFor(target: TopicTarget): string | undefined {
    const view = this.options.view;
    if (target.kind === "pod") {
      const pod = view.podByIP(target.ip);
      return pod && `${JSON.stringify(podUpdate(pod, target.ip, target.port, this.options.trustDomain))}\n`;
    }
    const service = view.service(target.namespace, target.name);
    if (!service || !servicePortOf(service, target.port)) return undefined;
    return this.render(target, service);
  }

  private render(target: ServiceAuthority, service: V1Service): string {
    const view = this.options.view;
    const update: DiscoveryUpdate = destinationUpdate(
      {
        service,
        slices: view.slices(target.namespace, target.name),
        pod: (ns, pod) => view.pod(ns, pod),
        profile: view.profile(target.namespace, target.name),
        trustDomain: this.options.trustDomain,
      },
      target,
    );
    return `${JSON.stringify(update)}\n`;
  }
}
