/**
 * The admin endpoint: GET /metrics (Prometheus text), /ready, /live and /identity
 * ({spiffeId, leafNotAfter, leafFingerprint, leafAnchorFingerprint, trustBundleFingerprints,
 * renewals, leafExpired, renewalFailures, …, lastReportedAt, lastReportError}: what the proxy
 * holds and what it last reported), and the application's probes the kubelet asks for under
 * capture (/app-probe/..., app-probe.ts).
 *
 * `/ready` answers 503 only while the proxy cannot serve at all (docs/proxy.md, "Readiness"):
 * before its first leaf, and while draining. A degraded state — the control plane unreachable,
 * an expired leaf, a refused trust bundle — keeps it 200 with one `degraded:` line per state in
 * the body: making every proxy unready when the control plane fails would empty every Service
 * at once and turn a control-plane outage into a data-plane one.
 *
 * Owns: the admin HTTP server. Does not compute readiness or identity (proxy.ts and
 * local-identity.ts supply them).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { AppProbe } from "../capture/app-probes.ts";
import { runAppProbe } from "./app-probe.ts";
import type { HostPort } from "./config.ts";
import type { IdentityStatus } from "./local-identity.ts";
import type { Registry } from "./metrics.ts";

export interface AdminSources {
  registry: Registry;
  ready: () => boolean;
  /** Degraded states, one sentence each (shown by /ready, never making it fail). */
  degradations: () => string[];
  identity: (() => IdentityStatus) | undefined;
  /** Admin path → the application's probe it runs (from the injector); none without capture. */
  appProbes?: Record<string, AppProbe>;
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export function createAdminServer(sources: AdminSources): http.Server {
  const server = http.createServer(
    { maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 10_000 },
    (req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD")
        return send(res, 405, "text/plain", "method not allowed\n");
      switch (path) {
        case "/metrics":
          return send(res, 200, "text/plain; version=0.0.4", sources.registry.render());
        case "/live":
          return send(res, 200, "text/plain", "live\n");
        case "/ready": {
          const degraded = sources.degradations().map((d) => `degraded: ${d}\n`);
          return sources.ready()
            ? send(res, 200, "text/plain", ["ready\n", ...degraded].join(""))
            : send(res, 503, "text/plain", ["not ready\n", ...degraded].join(""));
        }
        case "/identity":
          if (!sources.identity) return send(res, 404, "text/plain", "identity not configured\n");
          return send(res, 200, "application/json", `${JSON.stringify(sources.identity())}\n`);
        default: {
          const probe = sources.appProbes?.[path ?? ""];
          if (!probe) return send(res, 404, "text/plain", "not found\n");
          // At the address the kubelet dialled (the pod's), as the kubelet would have.
          void runAppProbe(probe, req.socket.localAddress ?? "127.0.0.1", req.headers["user-agent"]).then(
            (r) => send(res, r.status, "text/plain", r.body),
          );
          return;
        }
      }
    },
  );
  server.maxConnections = 256;
  return server;
}

export function listenAdmin(server: http.Server, at: HostPort): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
