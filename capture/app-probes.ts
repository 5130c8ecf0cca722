// The kubelet's probes under capture. Every TCP connection to a meshed pod goes to its proxy,
// so a probe on an application port would test the proxy (a tcpSocket probe always "succeeds")
// and depend on the proxy's policy for unmeshed clients. The injector therefore rewrites each
// httpGet, tcpSocket and grpc probe on a captured port into an httpGet on the proxy's admin port,
// `/app-probe/<container>/<kind>`, and hands the original to the proxy, which runs it against the
// application (a real HTTP GET, TCP connect or grpc.health.v1 Check) and answers 200 or an error.
// The kubelet keeps its timing (period, thresholds, timeout); the application sees the probe come
// from its own pod's address.
//
// Owns: the wire form between the injector and the proxy (TRELLIS_PROXY_APP_PROBES, JSON) and
// its validation. Does not own: rewriting pods (controlplane/injector/probe-rewrite.ts) or
// running probes (proxy/app-probe.ts).

export const APP_PROBE_PATH_PREFIX = "/app-probe/";

export type ProbeKind = "startup" | "readiness" | "liveness";

export type AppProbe = (
  | {
      httpGet: {
        port: number;
        path: string;
        scheme: "HTTP" | "HTTPS";
        httpHeaders?: Array<{ name: string; value: string }>;
      };
    }
  | { tcpSocket: { port: number } }
  | { grpc: { port: number; service?: string } }
) & { timeoutSeconds: number };

/** The admin path a rewritten probe asks. */
export function appProbePath(container: string, kind: ProbeKind): string {
  return `${APP_PROBE_PATH_PREFIX}${container}/${kind}`;
}

const isPort = (p: unknown): p is number =>
  Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535;

function validProbe(p: unknown): p is AppProbe {
  if (typeof p !== "object" || p === null) return false;
  const probe = p as Record<string, Record<string, unknown> | undefined> & { timeoutSeconds?: unknown };
  if (!(Number.isInteger(probe.timeoutSeconds) && (probe.timeoutSeconds as number) >= 1)) return false;
  const kinds = ["httpGet", "tcpSocket", "grpc"].filter((k) => probe[k] !== undefined);
  if (kinds.length !== 1) return false;
  const http = probe.httpGet;
  if (http) {
    const headers = http.httpHeaders ?? [];
    return (
      isPort(http.port) &&
      typeof http.path === "string" &&
      http.path.startsWith("/") &&
      (http.scheme === "HTTP" || http.scheme === "HTTPS") &&
      Array.isArray(headers) &&
      headers.every(
        (h: { name?: unknown; value?: unknown }) =>
          typeof h?.name === "string" && typeof h?.value === "string",
      )
    );
  }
  if (probe.tcpSocket) return isPort(probe.tcpSocket.port);
  const grpc = probe.grpc as Record<string, unknown>;
  return isPort(grpc.port) && (grpc.service === undefined || typeof grpc.service === "string");
}

/** TRELLIS_PROXY_APP_PROBES → path → probe; throws with the first problem. */
export function parseAppProbes(json: string): Record<string, AppProbe> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error("not a JSON object");
  const out: Record<string, AppProbe> = {};
  for (const [path, probe] of Object.entries(raw)) {
    if (!path.startsWith(APP_PROBE_PATH_PREFIX))
      throw new Error(`${path}: not under ${APP_PROBE_PATH_PREFIX}`);
    if (!validProbe(probe))
      throw new Error(`${path}: not one httpGet, tcpSocket or grpc probe with a timeout`);
    out[path] = probe;
  }
  return out;
}
