// The data plane surviving its control plane, on the real node (issue 23), as phases of the
// end-to-end test that reuse its cluster, demo workloads and traffic (mesh.test.ts calls
// `controlPlaneOutage`). With the client sending steady HTTP/1.1 and HTTP/2 traffic to the
// server through the mesh:
//
//   1. "control plane down": the destination and identity Deployments scaled to zero for longer
//      than a leaf lifetime — every proxy's leaf expires and no discovery answers — then back.
//      The operator is stopped first: it would scale them back up within a second (which is
//      itself the first line of recovery); its restart is the "back".
//   2. "control plane frozen": their containers stopped with SIGSTOP for a minute (re-stopped if
//      the kubelet restarts them), the operator running and watching, then SIGCONT.
//
// Every request sent in those phases must succeed (all routes were known before the outage).
// The proxies' metrics, the Mesh's status and its Events are recorded as evidence.
import { CoreV1Api } from "@kubernetes/client-node";
import { CONTROL_PLANE_NAMESPACE } from "../../api/index.ts";
import { type LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import type { TrafficCollector } from "./traffic.ts";

export interface OutageContext {
  cluster: LocalCluster;
  traffic: TrafficCollector;
  /** Namespace of the demo workloads. */
  namespace: string;
  note: (line: string) => void;
  stopOperator: () => Promise<void>;
  startOperator: () => Promise<void>;
  /** The Mesh's leaf lifetime: the outage lasts longer than this. */
  leafLifetimeMs: number;
}

export interface OutageReport {
  /** Lines of evidence: proxy metrics, Mesh conditions and Events, proxy log lines. */
  evidence: string[];
  phases: string[];
  /** Reasons of the Mesh's Events seen (ComponentsUnavailable, ComponentsAvailable). */
  meshEvents: string[];
  /** Seconds the control plane was down in phase 1. */
  downSeconds: number;
  /**
   * From the first proxy's leaf expiry to every proxy holding a valid leaf again (epoch ms). In it
   * no new mTLS connection can be made (a proxy never presents an expired leaf, and its peers would
   * refuse one): only exchanges on connections opened before it can succeed.
   */
  leafExpired: { from: number; to: number } | undefined;
}

interface ProxyState {
  pod: string;
  app: string;
  connected: number | undefined;
  secondsToExpiry: number | undefined;
  refreshErrors: number;
  pingTimeouts: number;
}

const COMPONENTS = ["destination", "identity"] as const;

function sample(text: string, name: string, labels = ""): number | undefined {
  for (const line of text.split("\n")) {
    if (
      line.startsWith(`${name}${labels ? `{${labels}}` : ""} `) ||
      (!labels && line.startsWith(`${name} `))
    ) {
      return Number(line.split(" ").pop());
    }
  }
  return undefined;
}

export async function controlPlaneOutage(ctx: OutageContext): Promise<OutageReport> {
  const { cluster, traffic, note } = ctx;
  const core = cluster.kubeConfig().makeApiClient(CoreV1Api);
  const evidence: string[] = [];
  const record = (line: string) => {
    evidence.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    note(line);
  };
  const kubectl = (args: string[]) => cluster.kubectl(args);
  const meshedPods = async () =>
    (await core.listNamespacedPod({ namespace: ctx.namespace })).items
      .filter((p) => p.status?.podIP && !p.metadata?.deletionTimestamp && p.status?.phase === "Running")
      .map((p) => ({
        name: p.metadata?.name ?? "",
        app: p.metadata?.labels?.app ?? "",
        ip: p.status?.podIP ?? "",
      }));
  const controlPlanePods = async () =>
    (await core.listNamespacedPod({ namespace: CONTROL_PLANE_NAMESPACE })).items.filter((p) =>
      COMPONENTS.some((c) => p.metadata?.labels?.["app.kubernetes.io/component"] === c),
    );
  const proxies = async (): Promise<ProxyState[]> =>
    Promise.all(
      (await meshedPods()).map(async (p) => {
        const text = await fetch(`http://${p.ip}:4191/metrics`, { signal: AbortSignal.timeout(3000) })
          .then((r) => r.text())
          .catch(() => "");
        return {
          pod: p.name,
          app: p.app,
          connected: sample(text, "discovery_connected"),
          secondsToExpiry: sample(text, "identity_cert_seconds_to_expiry"),
          refreshErrors: sample(text, "identity_cert_refresh_total", 'result="error"') ?? 0,
          pingTimeouts: sample(text, "discovery_reconnects_total", 'reason="ping_timeout"') ?? 0,
        };
      }),
    );
  /** Every proxy holds a valid leaf, and every client proxy is connected to the destination. */
  const healthy = async () =>
    (await proxies()).every((p) => (p.secondsToExpiry ?? 0) > 0 && (p.app !== "client" || p.connected === 1));
  const show = (states: ProxyState[]) =>
    states
      .map(
        (s) =>
          `${s.pod}: discovery_connected=${s.connected ?? "-"} leaf_seconds_to_expiry=${s.secondsToExpiry ?? "-"} refresh_errors=${s.refreshErrors} ping_timeouts=${s.pingTimeouts}`,
      )
      .join("; ");
  const mesh = () =>
    JSON.parse(kubectl(["get", "mesh", "default", "-o", "json"])) as {
      status?: {
        phase?: string;
        conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
      };
    };
  // The Mesh's phase and Ready reason, recorded each time they change.
  let lastMesh = "";
  let downSeconds = 0;
  let leafExpired: OutageReport["leafExpired"];
  const watchMesh = setInterval(() => {
    try {
      const s = mesh().status;
      const ready = s?.conditions?.find((c) => c.type === "Ready");
      const line = `Mesh phase=${s?.phase} Ready=${ready?.status}/${ready?.reason}: ${ready?.message}`;
      if (line !== lastMesh) {
        lastMesh = line;
        record(line);
      }
    } catch {
      // the API server is busy; next second
    }
  }, 1000);

  const started = new Date().toISOString().slice(0, 19);
  try {
    // ---- 1. Scaled to zero for longer than a leaf lifetime --------------------------------------
    const deployments = COMPONENTS.map((c) =>
      kubectl([
        "-n",
        CONTROL_PLANE_NAMESPACE,
        "get",
        "deploy",
        "-l",
        `app.kubernetes.io/component=${c}`,
        "-o",
        "name",
      ]).trim(),
    );
    await ctx.stopOperator();
    record("operator stopped (it would scale the control plane back within a second)");
    traffic.phase("control plane down");
    kubectl(["-n", CONTROL_PLANE_NAMESPACE, "scale", "--replicas=0", ...deployments]);
    record(`scaled to zero: ${deployments.join(", ")}`);
    await waitFor(async () => (await controlPlanePods()).length === 0, 120_000, "control-plane pods gone");
    const down = Date.now();
    record("destination and identity pods gone");
    // Every proxy sees it, and then every leaf expires: the outage outlives the leaf lifetime.
    await waitFor(
      async () => (await proxies()).every((p) => p.app !== "client" || p.connected === 0),
      60_000,
      "every client proxy to see the destination gone",
    );
    const seen = await proxies();
    record(`proxies see the outage: ${show(seen)}`);
    const firstExpiry = Date.now() + 1000 * Math.min(...seen.map((p) => p.secondsToExpiry ?? Infinity));
    await waitFor(
      async () => (await proxies()).every((p) => (p.secondsToExpiry ?? 1) < -5),
      240_000,
      "every proxy's leaf to have expired",
      2000,
    );
    record(
      `every leaf expired, ${Math.round((Date.now() - down) / 1000)} s into the outage: ${show(await proxies())}`,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, down + ctx.leafLifetimeMs + 5_000 - Date.now())));
    downSeconds = Math.round((Date.now() - down) / 1000);

    traffic.phase("control plane back");
    await ctx.startOperator();
    record("operator started; it scales the control plane back");
    await waitFor(healthy, 180_000, "every proxy renewed and reconnected", 1000);
    leafExpired = { from: firstExpiry, to: Date.now() };
    record(
      `recovered ${Math.round((Date.now() - down) / 1000)} s after the outage began: ${show(await proxies())}`,
    );
    await waitFor(async () => mesh().status?.phase === "Ready", 120_000, "the Mesh Ready again");
    traffic.phase("after the outage");
    await new Promise((r) => setTimeout(r, 15_000));

    // ---- 2. Frozen for a minute --------------------------------------------------------------
    traffic.phase("control plane frozen");
    const frozen = new Set<string>();
    const freeze = async () => {
      for (const pod of await controlPlanePods()) {
        for (const c of pod.status?.containerStatuses ?? []) {
          if (!c.containerID || !c.state?.running || frozen.has(c.containerID)) continue;
          await cluster.realNode.signalContainer(c.containerID, "SIGSTOP");
          frozen.add(c.containerID);
          record(`SIGSTOP ${pod.metadata?.name}/${c.name} (restarts ${c.restartCount})`);
        }
      }
    };
    const frozenAt = Date.now();
    await freeze();
    // A liveness probe fails after ~30 s and the kubelet restarts the container: stop that one too.
    while (Date.now() - frozenAt < 60_000) {
      await new Promise((r) => setTimeout(r, 2000));
      await freeze();
    }
    record(`frozen for ${Math.round((Date.now() - frozenAt) / 1000)} s: ${show(await proxies())}`);
    for (const id of frozen) await cluster.realNode.signalContainer(id, "SIGCONT").catch(() => undefined);
    record("SIGCONT");
    traffic.phase("after the freeze");
    await waitFor(healthy, 120_000, "every proxy connected again after the freeze", 1000);
    await waitFor(async () => mesh().status?.phase === "Ready", 120_000, "the Mesh Ready after the freeze");
    await new Promise((r) => setTimeout(r, 15_000));
    record(`after the freeze: ${show(await proxies())}`);
  } finally {
    clearInterval(watchMesh);
  }

  // Events: the Mesh's (the operator's) and the control plane's (kubelet, Deployment controller).
  const events = kubectl([
    "get",
    "events",
    "-A",
    "--sort-by=.lastTimestamp",
    "-o",
    "custom-columns=TIME:.lastTimestamp,TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message",
  ])
    .split("\n")
    .filter((l) => /ComponentsUnavailable|ComponentsAvailable|Unhealthy|Killing|ScalingReplicaSet/.test(l))
    .filter((l) => /destination|identity|default/.test(l))
    .filter((l) => l.slice(0, 19) >= started);
  evidence.push("events:", ...events.map((e) => `  ${e.replace(/\s+/g, " ").slice(0, 220)}`));
  const meshEvents = kubectl([
    "get",
    "events",
    "-A",
    "--field-selector",
    "involvedObject.kind=Mesh",
    "-o",
    "jsonpath={range .items[*]}{.reason}{'\\n'}{end}",
  ])
    .split("\n")
    .filter((r) => r.startsWith("Components"));
  // Proxy log lines for these states (warn level, one when a state starts and one when it ends).
  for (const p of await meshedPods()) {
    const lines = cluster.realNode
      .containerLog(ctx.namespace, p.name, "trellis-proxy")
      .split("\n")
      .filter((l) => /"level":40/.test(l))
      .map((l) => {
        try {
          const o = JSON.parse(l) as { time: number; msg: string };
          return `${new Date(o.time).toISOString().slice(11, 19)} ${o.msg}`;
        } catch {
          return l.slice(0, 160);
        }
      });
    evidence.push(`${p.name} warnings (${lines.length}):`, ...lines.slice(-40).map((l) => `  ${l}`));
  }
  return {
    evidence,
    meshEvents,
    downSeconds,
    leafExpired,
    phases: [
      "control plane down",
      "control plane back",
      "after the outage",
      "control plane frozen",
      "after the freeze",
    ],
  };
}
