// The Manager ties the controller core together for one operator process: a shared set of
// informers (same spec → same informer), the controllers, the HTTP server for health and
// metrics, optional leader election, and the order of starting and stopping. start(): serve
// HTTP, wait for the lease if elected, start informers, wait for their sync, start controllers.
// stop(): stop taking work, let running reconciles finish, stop informers, release the lease.
// If leadership is lost the manager stops reconciling at once and, by default, the process exits
// (like controller-runtime) so that a fresh start re-joins the election.
// Owns lifecycle and wiring; does not own any reconcile logic.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { Controller, type ControllerOptions } from "./controller.ts";
import { ControllerMetrics } from "./controller-metrics.ts";
import { EventRecorder } from "./events.ts";
import { describeSpec, Informer, type InformerOptions, type InformerSpec } from "./informer.ts";
import { type LeaderElectionTimings, LeaderElector } from "./leader-election.ts";
import { ObjectWriter } from "./object-writer.ts";
import { OperatorServer } from "./operator-server.ts";
import { KubeClient } from "./rest-client.ts";

export interface ManagerOptions {
  kubeConfig: KubeConfig;
  /** The operator's name: field manager, event source and Lease name. */
  name: string;
  /** Namespace of the leader-election Lease. */
  namespace: string;
  leaderElection: boolean;
  leaderElectionTimings?: LeaderElectionTimings;
  /** This replica's identity in the Lease (default: hostname plus a random suffix). */
  identity?: string;
  /** Port of /healthz, /readyz and /metrics (default 8080; 0 picks a free port). */
  metricsPort?: number;
  metricsHost?: string;
  logger: Logger;
  /** Informer tuning shared by all informers (back-off, page size, watch timeout). */
  informerOptions?: Omit<InformerOptions, "logger" | "metrics">;
  /** Called after reconciling stopped because the lease could not be renewed (default: exit with status 1). */
  onLeadershipLost?: () => void;
}

export type ManagerPhase = "new" | "starting" | "standby" | "syncing" | "running" | "stopping" | "stopped";

export class Manager {
  readonly client: KubeClient;
  readonly writer: ObjectWriter;
  readonly events: EventRecorder;
  readonly metrics: ControllerMetrics;
  readonly identity: string;
  private readonly log: Logger;
  private readonly informers = new Map<string, Informer<KubernetesObject>>();
  private readonly controllers: Controller[] = [];
  private readonly server: OperatorServer;
  private elector: LeaderElector | undefined;
  private state: ManagerPhase = "new";
  private boundPort: number | undefined;

  constructor(private readonly options: ManagerOptions) {
    this.client = new KubeClient(options.kubeConfig);
    this.writer = new ObjectWriter(this.client, options.name);
    this.log = options.logger;
    this.events = new EventRecorder(this.client, options.name, this.log);
    this.metrics = new ControllerMetrics();
    this.client.onRequest = (verb) => this.metrics.apiRequests.inc({ verb });
    this.identity = options.identity ?? `${hostname()}_${randomBytes(4).toString("hex")}`;
    this.server = new OperatorServer({
      port: options.metricsPort ?? 8080,
      host: options.metricsHost,
      registry: this.metrics.registry,
      ready: () => this.readiness(),
    });
  }

  get phase(): ManagerPhase {
    return this.state;
  }

  /** The port the HTTP server listens on, once started. */
  get port(): number | undefined {
    return this.boundPort;
  }

  get isLeader(): boolean {
    return this.options.leaderElection ? (this.elector?.isLeader ?? false) : this.state === "running";
  }

  /** The shared informer for `spec`: the same spec always returns the same informer. */
  informer<T extends KubernetesObject>(spec: InformerSpec): Informer<T> {
    const key = informerKey(spec);
    let informer = this.informers.get(key);
    if (!informer) {
      informer = new Informer<KubernetesObject>(this.client, this.options.kubeConfig, spec, {
        ...this.options.informerOptions,
        logger: this.log,
        metrics: this.metrics,
      });
      this.informers.set(key, informer);
      if (this.state === "syncing" || this.state === "running") informer.start();
    }
    return informer as unknown as Informer<T>;
  }

  controller(options: ControllerOptions): Controller {
    if (this.controllers.some((c) => c.name === options.name)) {
      throw new Error(`a controller named ${options.name} already exists`);
    }
    const controller = new Controller(options, { logger: this.log, metrics: this.metrics });
    this.controllers.push(controller);
    if (this.state === "running") controller.start();
    return controller;
  }

  /** Starts everything; resolves once controllers run (a standby resolves when it becomes leader). */
  async start(): Promise<void> {
    if (this.state !== "new") throw new Error(`manager already ${this.state}`);
    this.state = "starting";
    this.boundPort = await this.server.listen();
    this.log.info({ port: this.boundPort, identity: this.identity }, "manager serving health and metrics");
    if (this.options.leaderElection && !(await this.lead())) return;
    if (this.stopping()) return;
    this.state = "syncing";
    for (const informer of this.informers.values()) informer.start();
    await Promise.all([...this.informers.values()].map((i) => i.waitForSync()));
    if (this.stopping()) return;
    for (const controller of this.controllers) controller.start();
    this.state = "running";
    this.log.info({ controllers: this.controllers.map((c) => c.name) }, "manager running");
  }

  /** Graceful stop: no new work, running reconciles finish, informers stop, the lease is released. */
  async stop(): Promise<void> {
    if (this.state === "stopping" || this.state === "stopped") return;
    this.state = "stopping";
    await Promise.all(this.controllers.map((c) => c.stop()));
    await this.elector?.stop();
    await Promise.all([...this.informers.values()].map((i) => i.stop()));
    await this.server.close();
    this.client.close();
    this.state = "stopped";
    this.log.info("manager stopped");
  }

  private async lead(): Promise<boolean> {
    this.elector = new LeaderElector({
      ...this.options.leaderElectionTimings,
      client: this.client,
      name: this.options.name,
      namespace: this.options.namespace,
      identity: this.identity,
      logger: this.log,
      metrics: this.metrics,
    });
    this.state = "standby";
    if (!(await this.elector.acquire())) return false;
    this.elector.startRenewing(() => void this.onLost());
    return true;
  }

  private async onLost(): Promise<void> {
    this.state = "stopping";
    this.log.fatal("leadership lost: stopping all controllers");
    // Another replica may lead soon: give running reconciles (signalled to abort) a moment, no more.
    const stopped = Promise.all([
      ...this.controllers.map((c) => c.stop(true)),
      ...[...this.informers.values()].map((i) => i.stop()),
    ]);
    await Promise.race([stopped, sleep(1000)]);
    this.state = "stopped";
    const exit = this.options.onLeadershipLost ?? (() => process.exit(1));
    exit();
  }

  private stopping(): boolean {
    return this.state === "stopping" || this.state === "stopped";
  }

  private readiness(): { ok: boolean; reason: string } {
    if (this.state === "standby")
      return { ok: true, reason: `standby; leader is ${this.elector?.leader ?? "unknown"}` };
    if (this.state === "running") return { ok: true, reason: "informers synced; controllers running" };
    const pending = [...this.informers.values()]
      .filter((i) => !i.hasSynced())
      .map((i) => describeSpec(i.spec));
    return { ok: false, reason: `${this.state}; waiting for ${pending.join(", ") || "start"}` };
  }
}

const transformIds = new WeakMap<NonNullable<InformerSpec["transform"]>, number>();
let nextTransformId = 1;

/** A spec's identity: same resource, scope, selector and transform function → the same informer. */
function informerKey(spec: InformerSpec): string {
  const { apiVersion, kind, plural, namespaced, namespace, labelSelector, transform } = spec;
  let view = 0;
  if (transform) {
    view = transformIds.get(transform) ?? nextTransformId++;
    transformIds.set(transform, view);
  }
  return JSON.stringify([apiVersion, kind, plural, namespaced, namespace ?? "", labelSelector ?? "", view]);
}
