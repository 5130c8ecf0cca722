// The operator's HTTP endpoints: /healthz (the process is serving), /readyz (the manager says
// it is ready: caches synced, or standing by for the lease) and /metrics (Prometheus text
// format). Owns the HTTP server; does not own what readiness means (manager.ts) or the metrics
// (metrics.ts).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { METRICS_CONTENT_TYPE, type Registry } from "./metrics.ts";

export interface OperatorServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  ready: () => { ok: boolean; reason: string };
}

export class OperatorServer {
  private readonly server: Server;

  constructor(private readonly options: OperatorServerOptions) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD" }).end();
        return;
      }
      if (path === "/healthz") {
        res.writeHead(200, { "Content-Type": "text/plain" }).end("ok\n");
      } else if (path === "/readyz") {
        const { ok, reason } = this.options.ready();
        res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(`${reason}\n`);
      } else if (path === "/metrics") {
        res.writeHead(200, { "Content-Type": METRICS_CONTENT_TYPE }).end(this.options.registry.render());
      } else {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      }
    });
    this.server.keepAliveTimeout = 5_000;
  }

  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.host ?? "0.0.0.0", () => {
        this.server.off("error", reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
