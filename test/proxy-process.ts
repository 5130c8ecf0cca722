// Real Trellis proxy processes and a real Prometheus on loopback, for tests that need the
// proxies' own metrics: an application that fails a known share of requests, the proxy in front
// of it (plaintext inbound, admin endpoint with /metrics), and Debian's Prometheus scraping the
// proxies every second with the labels a Kubernetes scrape config would attach.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./cluster/binaries.ts";
import { freePort, waitFor } from "./cluster/local-cluster.ts";
import type { ProcessGroup } from "./cluster/process-group.ts";

/** An application answering 500 to `share` of its requests, spread evenly (0.1: every tenth). */
const FAILING_APP = `const share = Number(process.argv[2]); let n = 0;
require("node:http").createServer((q, s) => {
  s.statusCode = Math.floor((n + 1) * share) > Math.floor(n * share) ? 500 : 200; n++; s.end("ok");
}).listen(Number(process.argv[1]), "127.0.0.1");`;

export interface ProxiedApp {
  /** The proxy's inbound port (plaintext allowed). */
  inbound: number;
  admin: number;
}

/** An application failing `failShare` of its requests behind a real proxy; waits until /metrics answers. */
export async function startProxiedApp(
  group: ProcessGroup,
  dir: string,
  name: string,
  failShare: number,
): Promise<ProxiedApp> {
  const [app, inbound, admin] = [await freePort(), await freePort(), await freePort()];
  group.start({
    name: `app-${name}`,
    command: process.execPath,
    args: ["-e", FAILING_APP, String(app), String(failShare)],
    logFile: join(dir, `app-${name}.log`),
  });
  group.start({
    name: `proxy-${name}`,
    command: process.execPath,
    args: ["--import", "tsx", "proxy/main.ts"],
    cwd: repoRoot,
    logFile: join(dir, `proxy-${name}.log`),
    env: {
      ...process.env,
      TRELLIS_PROXY_INBOUND_LISTEN: `127.0.0.1:${inbound}`,
      TRELLIS_PROXY_INBOUND_APP: `127.0.0.1:${app}`,
      TRELLIS_PROXY_INBOUND_ALLOW_PLAINTEXT: "true",
      TRELLIS_PROXY_ADMIN_LISTEN: `127.0.0.1:${admin}`,
    },
  });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${admin}/metrics`)).ok, 30_000, `proxy ${name}`);
  return { inbound, admin };
}

/** Prometheus scraping each admin port every second, with the given target labels; returns its port. */
export async function startPrometheus(
  group: ProcessGroup,
  dir: string,
  targets: Array<{ admin: number; labels: Record<string, string> }>,
): Promise<number> {
  const port = await freePort();
  const config = join(dir, "prometheus.yml");
  const staticConfigs = targets
    .map((t) => `      - targets: ["127.0.0.1:${t.admin}"]\n        labels: ${JSON.stringify(t.labels)}`)
    .join("\n");
  writeFileSync(
    config,
    `global: { scrape_interval: 1s, evaluation_interval: 1s }
scrape_configs:
  - job_name: trellis-proxies
    static_configs:
${staticConfigs}
`,
  );
  group.start({
    name: "prometheus",
    command: "prometheus",
    args: [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "prometheus")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    logFile: join(dir, "prometheus.log"),
  });
  return port;
}

/** The single value of an instant query, 0 when there is none. */
export async function prometheusValue(port: number, query: string): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await r.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
  return Number(body.data?.result?.[0]?.value[1] ?? 0);
}
