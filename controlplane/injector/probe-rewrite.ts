// Rewrites a meshed pod's probes so that the kubelet's plaintext probes keep meaning what they
// meant once every inbound connection is captured (capture/app-probes.ts says why and how).
// Pure: pod in, JSON Patch operations and the originals for the proxy out.
//
// Rewritten: httpGet (without `host`), tcpSocket (without `host`) and grpc probes of the app's
// containers and of its sidecars (init containers with restartPolicy: Always), when their port
// is captured. Left alone: exec probes, probes that name another host, and ports in
// skip-inbound-ports (those connections never reach the proxy). A named port that no port of
// the container declares is left alone too: the kubelet will report it, as it would unmeshed.
import type { V1Container, V1Pod, V1Probe } from "@kubernetes/client-node";
import { type AppProbe, appProbePath, type ProbeKind } from "../../capture/app-probes.ts";
import { type PortRange, PROXY_PORTS, portInRanges } from "../../capture/capture-settings.ts";
import type { JsonPatchOperation } from "./inject.ts";

const KINDS: ReadonlyArray<[ProbeKind, "startupProbe" | "readinessProbe" | "livenessProbe"]> = [
  ["startup", "startupProbe"],
  ["readiness", "readinessProbe"],
  ["liveness", "livenessProbe"],
];

export interface ProbeRewrite {
  /** `replace` operations on the pod as admitted (apply them before inserting containers). */
  patch: JsonPatchOperation[];
  /** Admin path → the original probe, for TRELLIS_PROXY_APP_PROBES. */
  probes: Record<string, AppProbe>;
}

function portNumber(container: V1Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  if (typeof port === "string" && /^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * The request path as the kubelet sends it: Kubernetes requires only a non-empty path, and the
 * kubelet's URL puts a "/" before one that lacks it (`healthz` is GET /healthz); the proxy takes
 * only absolute paths.
 */
function absolutePath(path: string | undefined): string {
  if (!path) return "/";
  return path.startsWith("/") ? path : `/${path}`;
}

/** The original probe as the proxy will run it, or undefined when it stays as it is. */
function original(container: V1Container, probe: V1Probe, skip: readonly PortRange[]): AppProbe | undefined {
  const timeoutSeconds = probe.timeoutSeconds ?? 1;
  // A port outside 1-65535 is left alone: the API server refuses the pod for it, as it would
  // unmeshed; rewritten, the pod was admitted and its proxy refused the probe and never started.
  const captured = (port: number | undefined): port is number =>
    Number.isInteger(port) &&
    (port as number) >= 1 &&
    (port as number) <= 65535 &&
    !portInRanges(port as number, skip) &&
    port !== PROXY_PORTS.admin;
  if (probe.httpGet && !probe.httpGet.host) {
    const port = portNumber(container, probe.httpGet.port as number | string);
    if (!captured(port)) return undefined;
    const headers = probe.httpGet.httpHeaders?.map((h) => ({ name: h.name, value: h.value }));
    return {
      httpGet: {
        port,
        path: absolutePath(probe.httpGet.path),
        scheme: probe.httpGet.scheme === "HTTPS" ? "HTTPS" : "HTTP",
        ...(headers?.length ? { httpHeaders: headers } : {}),
      },
      timeoutSeconds,
    };
  }
  if (probe.tcpSocket && !probe.tcpSocket.host) {
    const port = portNumber(container, probe.tcpSocket.port as number | string);
    return captured(port) ? { tcpSocket: { port }, timeoutSeconds } : undefined;
  }
  if (probe.grpc) {
    const port = probe.grpc.port;
    if (!captured(port)) return undefined;
    return { grpc: { port, ...(probe.grpc.service ? { service: probe.grpc.service } : {}) }, timeoutSeconds };
  }
  return undefined;
}

/** The kubelet's view after the rewrite: the same timing, an httpGet on the proxy's admin port. */
function rewritten(probe: V1Probe, path: string): V1Probe {
  const { httpGet: _h, tcpSocket: _t, grpc: _g, exec: _e, ...timing } = probe;
  return { ...timing, httpGet: { path, port: PROXY_PORTS.admin as never, scheme: "HTTP" } };
}

export function rewriteProbes(pod: V1Pod, skipInboundPorts: readonly PortRange[]): ProbeRewrite {
  const patch: JsonPatchOperation[] = [];
  const probes: Record<string, AppProbe> = {};
  const lists = [
    ["containers", pod.spec?.containers ?? []],
    ["initContainers", pod.spec?.initContainers ?? []],
  ] as const;
  for (const [list, containers] of lists) {
    containers.forEach((container, index) => {
      if (list === "initContainers" && container.restartPolicy !== "Always") return;
      for (const [kind, field] of KINDS) {
        const probe = container[field];
        if (!probe) continue;
        const app = original(container, probe, skipInboundPorts);
        if (!app) continue;
        const path = appProbePath(container.name, kind);
        probes[path] = app;
        patch.push({ op: "replace", path: `/spec/${list}/${index}/${field}`, value: rewritten(probe, path) });
      }
    });
  }
  return { patch, probes };
}
