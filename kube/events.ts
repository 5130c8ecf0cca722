// Kubernetes Events (core/v1) about the objects a controller reconciles, aggregated like
// client-go's recorder: an identical event (same object, type, reason, message and source) is
// not created again but has its count and lastTimestamp patched. Messages are scrubbed of PEM
// blocks and bearer tokens and cut to 1 KiB, so no secret ends up in an Event. Recording never
// fails a reconcile: errors are logged. Owns event names, aggregation and scrubbing; does not
// own when to record (the controllers).
import { hostname } from "node:os";
import type { CoreV1Event, KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { isNotFound, type KubeClient, type ResourceType } from "./rest-client.ts";

export type EventType = "Normal" | "Warning";

const EVENTS: ResourceType = { apiVersion: "v1", kind: "Event", plural: "events", namespaced: true };
const MAX_MESSAGE = 1024;
const CACHE_SIZE = 4096;

interface Aggregate {
  name: string;
  namespace: string;
  count: number;
}

const PEM = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer|token[=:]\s*)\s*[A-Za-z0-9._~+/-]{8,}=*/gi;

/** Removes what must never be published in an Event: PEM blocks (keys, certificates) and tokens. */
export function scrubMessage(message: string): string {
  const scrubbed = message
    .replace(PEM, "[redacted PEM block]")
    .replace(JWT, "[redacted token]")
    .replace(BEARER, "$1[redacted]");
  return scrubbed.length > MAX_MESSAGE ? `${scrubbed.slice(0, MAX_MESSAGE - 3)}...` : scrubbed;
}

export class EventRecorder {
  private readonly seen = new Map<string, Aggregate>();
  private readonly host = hostname();

  constructor(
    private readonly client: KubeClient,
    /** source.component, e.g. "trellis-operator". */
    private readonly component: string,
    private readonly logger: Logger,
  ) {}

  /** Records an event about `obj`; resolves when written (or when writing failed and was logged). */
  async event(obj: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const clean = scrubMessage(message);
    const key = this.aggregationKey(obj, type, reason, clean);
    try {
      const known = this.seen.get(key);
      if (known && (await this.bump(known))) return;
      this.remember(key, await this.create(obj, type, reason, clean));
    } catch (err) {
      this.logger.warn(
        { err: String(err), reason, object: `${obj.kind}/${obj.metadata?.name}` },
        "could not record event",
      );
    }
  }

  private async create(
    obj: KubernetesObject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<Aggregate> {
    const name = obj.metadata?.name ?? "unknown";
    const namespace = obj.metadata?.namespace || "default";
    const now = new Date().toISOString();
    const event: CoreV1Event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${name}.${eventSuffix()}`, namespace },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name,
        namespace: obj.metadata?.namespace,
        uid: obj.metadata?.uid,
        resourceVersion: obj.metadata?.resourceVersion,
      },
      type,
      reason,
      message,
      source: { component: this.component, host: this.host },
      reportingComponent: this.component,
      reportingInstance: this.host,
      firstTimestamp: now as unknown as Date,
      lastTimestamp: now as unknown as Date,
      count: 1,
    };
    const created = await this.client.create(EVENTS, event);
    return { name: created.metadata?.name ?? "", namespace, count: 1 };
  }

  /** Patches count and lastTimestamp of a known event; false if it is gone (expired), so a new one is made. */
  private async bump(known: Aggregate): Promise<boolean> {
    try {
      await this.client.patch(EVENTS, known, "merge", {
        count: known.count + 1,
        lastTimestamp: new Date().toISOString(),
      });
      known.count += 1;
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private remember(key: string, aggregate: Aggregate): void {
    this.seen.delete(key);
    this.seen.set(key, aggregate);
    if (this.seen.size > CACHE_SIZE) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
  }

  private aggregationKey(obj: KubernetesObject, type: string, reason: string, message: string): string {
    const m = obj.metadata;
    return JSON.stringify([obj.apiVersion, obj.kind, m?.namespace, m?.name, m?.uid, type, reason, message]);
  }
}

/** client-go names events `<object>.<unix nanoseconds in hex>`; unique enough across replicas. */
function eventSuffix(): string {
  const nanos = BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
  return nanos.toString(16);
}
