// Reading and nudging an Argo CD Application the way a person does with the CLI or the UI:
// its sync status, health, the health of each resource (what Trellis's health.lua returned),
// the last operation, and refreshes (the annotation a git webhook or `argocd app get --refresh`
// sets). Also waits with a message that shows the Application's state when it times out.
// Does not own: starting Argo CD or writing to git.
import { Watch } from "@kubernetes/client-node";
import type { LocalCluster } from "../cluster/local-cluster.ts";
import { waitFor } from "../cluster/local-cluster.ts";
import { type ApplicationOptions, ARGOCD_NAMESPACE, application, yamlStream } from "./argocd-config.ts";

const REFRESH_ANNOTATION = "argocd.argoproj.io/refresh";

export interface ResourceStatus {
  group?: string;
  kind: string;
  name: string;
  namespace?: string;
  status?: string;
  health?: { status?: string; message?: string };
}

export interface ApplicationView {
  metadata: { name: string; annotations?: Record<string, string> };
  status?: {
    sync?: { status?: string; revision?: string };
    health?: { status?: string; message?: string };
    resources?: ResourceStatus[];
    reconciledAt?: string;
    operationState?: {
      phase?: string;
      message?: string;
      startedAt?: string;
      finishedAt?: string;
      syncResult?: { revision?: string };
    };
    conditions?: Array<{ type: string; message: string }>;
  };
}

export class ArgoApplication {
  constructor(
    readonly cluster: LocalCluster,
    readonly name: string,
  ) {}

  /** Creates or updates the Application. */
  static apply(cluster: LocalCluster, options: ApplicationOptions): ArgoApplication {
    cluster.kubectl(["apply", "-f", "-"], yamlStream([application(options)]));
    return new ArgoApplication(cluster, options.name);
  }

  async get(): Promise<ApplicationView> {
    const out = await this.cluster.kubectlAsync([
      "-n",
      ARGOCD_NAMESPACE,
      "get",
      "application",
      this.name,
      "-o",
      "json",
    ]);
    return JSON.parse(out) as ApplicationView;
  }

  /** Asks Argo CD to compare again now; `hard` also regenerates manifests from git. */
  refresh(kind: "normal" | "hard" = "normal"): void {
    this.cluster.kubectl([
      "-n",
      ARGOCD_NAMESPACE,
      "annotate",
      "--overwrite",
      "application",
      this.name,
      `${REFRESH_ANNOTATION}=${kind}`,
    ]);
  }

  /**
   * Refreshes and waits until Argo CD has compared again because of it: the annotation is gone
   * (Argo CD removes it only after persisting the comparison that read it; a comparison already
   * running leaves it in place) and reconciledAt is not older than the request. reconciledAt has a
   * resolution of one second, so it can keep its value when the refresh ends in the same second as
   * an earlier comparison: it is not compared with its value before the request.
   */
  async refreshAndWait(kind: "normal" | "hard", timeoutMs = 60_000): Promise<ApplicationView> {
    const requestedSecond = Math.floor(Date.now() / 1000) * 1000;
    this.refresh(kind);
    return this.waitFor(
      `${kind} refresh done`,
      (a) =>
        a.metadata.annotations?.[REFRESH_ANNOTATION] === undefined &&
        Date.parse(a.status?.reconciledAt ?? "") >= requestedSecond,
      timeoutMs,
    );
  }

  /**
   * Records every version of the Application that the API server sends: a watch, so that no
   * short state (a canary of a few seconds) falls between two polls.
   */
  async watch(): Promise<{ stop: () => ApplicationView[] }> {
    const seen: ApplicationView[] = [];
    const controller = await new Watch(this.cluster.kubeConfig()).watch(
      `/apis/argoproj.io/v1alpha1/namespaces/${ARGOCD_NAMESPACE}/applications`,
      { fieldSelector: `metadata.name=${this.name}` },
      (_phase: string, obj: ApplicationView) => seen.push(obj),
      () => {},
    );
    return {
      stop: () => {
        controller.abort();
        return seen;
      },
    };
  }

  /** Waits until `check` holds for the Application; the error shows its state. */
  async waitFor(
    what: string,
    check: (app: ApplicationView) => boolean,
    timeoutMs = 120_000,
  ): Promise<ApplicationView> {
    let last: ApplicationView | undefined;
    await waitFor(
      async () => {
        last = await this.get();
        return check(last);
      },
      timeoutMs,
      `Application ${this.name}: ${what}`,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${describeApplication(last)}`);
    });
    return last as ApplicationView;
  }
}

export function syncStatus(app: ApplicationView): string | undefined {
  return app.status?.sync?.status;
}

export function healthStatus(app: ApplicationView): string | undefined {
  return app.status?.health?.status;
}

/** The health Argo CD computed for one resource of the Application. */
export function resourceHealth(app: ApplicationView, kind: string, name: string): ResourceStatus["health"] {
  return app.status?.resources?.find((r) => r.kind === kind && r.name === name)?.health;
}

/** Synced to `revision` (when given) and Healthy, with the last operation (if any) Succeeded. */
export function isSyncedAndHealthy(app: ApplicationView, revision?: string): boolean {
  const phase = app.status?.operationState?.phase;
  return (
    syncStatus(app) === "Synced" &&
    healthStatus(app) === "Healthy" &&
    (revision === undefined || app.status?.sync?.revision === revision) &&
    (phase === undefined || phase === "Succeeded")
  );
}

/** A few lines a person would read in `argocd app get`. */
export function describeApplication(app: ApplicationView | undefined): string {
  if (!app) return "application: not found";
  const s = app.status;
  const lines = [
    `sync=${s?.sync?.status} revision=${s?.sync?.revision?.slice(0, 8)} health=${s?.health?.status} reconciledAt=${s?.reconciledAt}`,
    ...(app.metadata.annotations?.[REFRESH_ANNOTATION]
      ? [`refresh requested: ${app.metadata.annotations[REFRESH_ANNOTATION]}`]
      : []),
    `operation=${s?.operationState?.phase} ${s?.operationState?.message ?? ""}`,
    ...(s?.conditions ?? []).map((c) => `condition ${c.type}: ${c.message}`),
    ...(s?.resources ?? []).map(
      (r) =>
        `  ${r.kind}/${r.namespace ? `${r.namespace}/` : ""}${r.name}: ${r.status} ${r.health?.status ?? ""} ${r.health?.message ?? ""}`,
    ),
  ];
  return lines.join("\n");
}
