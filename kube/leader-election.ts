// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm: a candidate
// takes the lease when it is free or when its holder has not renewed it for a lease duration
// (measured on this replica's clock from when it last saw the record change, so clock skew
// between replicas does not matter); the leader renews every retry period and gives up when it
// cannot renew within the renew deadline; a graceful stop releases the lease so a standby takes
// over at once. Writes use the Lease's resourceVersion, so two candidates never both win.
// Owns the Lease and the leading/standby state; does not own what leading means (manager.ts).
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ControllerMetrics } from "./controller-metrics.ts";
import { isConflict, isNotFound, type KubeClient, type ResourceType, resourcePath } from "./rest-client.ts";

const LEASES: ResourceType = {
  apiVersion: "coordination.k8s.io/v1",
  kind: "Lease",
  plural: "leases",
  namespaced: true,
};

export interface LeaderElectionTimings {
  /** How long a standby waits after the last renewal it saw before taking over (default 15 s). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up leadership (default 10 s). */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew (default 2 s). */
  retryPeriodMs?: number;
}

export interface LeaderElectorOptions extends LeaderElectionTimings {
  client: KubeClient;
  name: string;
  namespace: string;
  identity: string;
  logger: Logger;
  metrics?: ControllerMetrics;
}

export type LeaderState = "candidate" | "leading" | "lost" | "stopped";

export class LeaderElector {
  private state: LeaderState = "candidate";
  private observed: { holder: string; renewTime: string; resourceVersion: string } | undefined;
  private observedAt = 0;
  private readonly stopSignal = new AbortController();
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly log: Logger;
  private renewing: Promise<void> | undefined;

  constructor(private readonly options: LeaderElectorOptions) {
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseDurationMs)
      throw new Error("renewDeadline must be shorter than leaseDuration");
    this.log = options.logger.child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
  }

  get isLeader(): boolean {
    return this.state === "leading";
  }

  get currentState(): LeaderState {
    return this.state;
  }

  /** The holder of the lease as last seen (possibly this replica). */
  get leader(): string | undefined {
    return this.observed?.holder || undefined;
  }

  /** Resolves true once this replica leads, false if stopped first. */
  async acquire(): Promise<boolean> {
    while (!this.stopSignal.signal.aborted) {
      if (await this.tryAcquireOrRenew()) {
        this.setState("leading");
        this.log.info("acquired the lease; leading");
        return true;
      }
      await this.wait(this.retryPeriodMs * (1 + Math.random() * 0.2));
    }
    return false;
  }

  /** Renews until stopped or until renewing fails for renewDeadline; then calls onLost (not after stop). */
  startRenewing(onLost: () => void): void {
    this.renewing = this.renewLoop(onLost);
  }

  /** Stops renewing and, if leading, releases the lease so that a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopSignal.abort();
    await this.renewing;
    const wasLeading = this.state === "leading";
    this.setState("stopped");
    if (wasLeading) await this.release();
  }

  private async renewLoop(onLost: () => void): Promise<void> {
    let lastRenew = Date.now();
    while (!this.stopSignal.signal.aborted) {
      await this.wait(this.retryPeriodMs);
      if (this.stopSignal.signal.aborted) return;
      // An attempt never runs past the deadline, so leadership is given up before the lease expires.
      const remaining = lastRenew + this.renewDeadlineMs - Date.now();
      if (remaining > 0 && (await this.tryAcquireOrRenew(Math.min(this.requestTimeoutMs(), remaining)))) {
        lastRenew = Date.now();
        continue;
      }
      if (Date.now() - lastRenew >= this.renewDeadlineMs) {
        this.setState("lost");
        this.log.error(
          { renewDeadlineMs: this.renewDeadlineMs },
          "could not renew the lease in time; leadership lost",
        );
        onLost();
        return;
      }
    }
  }

  private async tryAcquireOrRenew(timeoutMs = this.requestTimeoutMs()): Promise<boolean> {
    const { identity } = this.options;
    const now = microTime(new Date());
    try {
      const lease = await this.read(timeoutMs);
      if (!lease) {
        await this.write("POST", this.newLease(now, 0), timeoutMs);
        return true;
      }
      const spec = lease.spec ?? {};
      this.observe(lease);
      const holder = spec.holderIdentity ?? "";
      if (holder && holder !== identity && !this.expired(spec.leaseDurationSeconds)) return false;
      const transitions = (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
      const next = this.newLease(
        holder === identity ? (spec.acquireTime as unknown as string) : now,
        transitions,
      );
      next.metadata = { ...next.metadata, resourceVersion: lease.metadata?.resourceVersion };
      this.observe(await this.write("PUT", next, timeoutMs));
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn({ err: String(err) }, "lease request failed");
      return false;
    }
  }

  private expired(leaseDurationSeconds: number | undefined): boolean {
    const duration = leaseDurationSeconds !== undefined ? leaseDurationSeconds * 1000 : this.leaseDurationMs;
    return this.observedAt + duration <= Date.now();
  }

  private observe(lease: V1Lease): void {
    const record = {
      holder: lease.spec?.holderIdentity ?? "",
      renewTime: String(lease.spec?.renewTime ?? ""),
      resourceVersion: lease.metadata?.resourceVersion ?? "",
    };
    const o = this.observed;
    if (!o || o.holder !== record.holder || o.renewTime !== record.renewTime) {
      this.observed = record;
      this.observedAt = Date.now();
    }
  }

  private newLease(acquireTime: string, transitions: number): V1Lease {
    const now = microTime(new Date());
    return {
      apiVersion: LEASES.apiVersion,
      kind: LEASES.kind,
      metadata: { name: this.options.name, namespace: this.options.namespace },
      spec: {
        holderIdentity: this.options.identity,
        leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
        acquireTime: acquireTime as unknown as Date,
        renewTime: now as unknown as Date,
        leaseTransitions: transitions,
      },
    };
  }

  /** Gives the lease up: empty holder, 1 s duration (what client-go's ReleaseOnCancel writes). */
  private async release(): Promise<void> {
    try {
      const lease = await this.read();
      if (lease?.spec?.holderIdentity !== this.options.identity) return;
      const now = microTime(new Date());
      lease.spec = {
        ...lease.spec,
        holderIdentity: "",
        leaseDurationSeconds: 1,
        renewTime: now as unknown as Date,
      };
      await this.write("PUT", lease);
      this.log.info("released the lease");
    } catch (err) {
      this.log.warn(
        { err: String(err) },
        "could not release the lease; a standby takes over when it expires",
      );
    }
  }

  private async read(timeoutMs = this.requestTimeoutMs()): Promise<V1Lease | undefined> {
    try {
      return await this.options.client.request<V1Lease>({
        method: "GET",
        path: resourcePath(LEASES, this.options.namespace, this.options.name),
        timeoutMs,
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private write(
    method: "POST" | "PUT",
    lease: V1Lease,
    timeoutMs = this.requestTimeoutMs(),
  ): Promise<V1Lease> {
    const name = method === "PUT" ? this.options.name : undefined;
    return this.options.client.request<V1Lease>({
      method,
      path: resourcePath(LEASES, this.options.namespace, name),
      body: lease,
      timeoutMs,
    });
  }

  private requestTimeoutMs(): number {
    return Math.max(1000, Math.min(5000, this.renewDeadlineMs / 2));
  }

  private setState(state: LeaderState): void {
    this.state = state;
    this.options.metrics?.leader.set({ name: this.options.name }, state === "leading" ? 1 : 0);
  }

  private async wait(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.stopSignal.signal }).catch(() => undefined);
  }
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
