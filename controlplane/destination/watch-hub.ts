// The subscriptions of the destination service: one topic per watched Service port, each with
// its subscribers (open streams) and the last update sent. Cluster changes mark topics dirty;
// a timer coalesces a burst (a rollout touches slices and pods many times) into one recompute,
// and a line goes out only when the state really changed. Owns topics, coalescing and
// fan-out; does not own HTTP (destination-server.ts) or the mapping itself (destination-state.ts).
import type { V1EndpointSlice, V1Pod, V1Service } from "@kubernetes/client-node";
import type { ServiceProfile } from "../../api/index.ts";
import type { ServiceAuthority } from "./authority.ts";
import { type DiscoveryUpdate, destinationUpdate, servicePortOf } from "./destination-state.ts";

/** Read access to the informer caches the hub needs. */
export interface ClusterView {
  service(namespace: string, name: string): V1Service | undefined;
  slices(namespace: string, service: string): V1EndpointSlice[];
  pod(namespace: string, name: string): V1Pod | undefined;
  profile(namespace: string, service: string): ServiceProfile | undefined;
}

/** One open stream, as the hub sees it. */
export interface Subscriber {
  /** Writes one line; returns false when the subscriber was dropped (slow or gone). */
  send(line: string): boolean;
  /** Ends the stream (the Service disappeared): the proxy reconnects and learns 404. */
  end(): void;
}

interface Topic {
  target: ServiceAuthority;
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

const topicKey = (t: ServiceAuthority) => `${t.namespace}/${t.name}:${t.port}`;

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

  subscribe(target: ServiceAuthority, subscriber: Subscriber): SubscribeResult {
    const service = this.options.view.service(target.namespace, target.name);
    if (!service || !servicePortOf(service, target.port)) return { ok: false, reason: "NotFound" };
    const key = topicKey(target);
    let topic = this.topics.get(key);
    if (!topic) {
      if (this.topics.size >= this.options.maxAuthorities) return { ok: false, reason: "TooManyAuthorities" };
      topic = { target, subscribers: new Set(), lastLine: this.render(target, service) };
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
    for (const [key, topic] of this.topics) {
      if (topic.target.namespace === namespace && topic.target.name === name) this.markDirty(key);
    }
  }

  /** A pod changed: its identity or mesh membership may change any Service of its namespace. */
  namespaceChanged(namespace: string): void {
    for (const [key, topic] of this.topics) if (topic.target.namespace === namespace) this.markDirty(key);
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
    const { namespace, name, port } = topic.target;
    const service = this.options.view.service(namespace, name);
    if (!service || !servicePortOf(service, port)) {
      this.topics.delete(key);
      for (const s of topic.subscribers) s.end();
      return;
    }
    const line = this.render(topic.target, service);
    if (line === topic.lastLine) return;
    topic.lastLine = line;
    for (const s of [...topic.subscribers]) if (s.send(line)) this.updatesSent++;
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
