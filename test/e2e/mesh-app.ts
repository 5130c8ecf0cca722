// The application of the end-to-end test and the demo (`npm run up`), run in real pods. It knows
// nothing of the mesh: it calls ordinary addresses (http://server:8080/, a gRPC target, a TCP
// service) as any program would — no proxy port, no proxy setting, no mesh library — and the
// pod's traffic is captured by the mesh anyway (docs/capture.md). One program, three roles
// (MESH_APP_ROLE):
//
//   server  serves HTTP/1.1 and HTTP/2 (prior knowledge) on PORT, answering {pod, container,
//           method, path}; gRPC on GRPC_PORT (demo.Echo/Say and grpc.health.v1) and a server-first
//           "greeting" protocol on GREETING_PORT, when set. On SIGTERM it keeps serving for
//           DRAIN_MS, as a real service does while the endpoint removal spreads, then exits.
//   client  calls each of TARGETS ("class=url,...", app-protocols.ts) RATE times a second and
//           counts every exchange. GET /stats on STATS_PORT returns the counters and hands over
//           (drains) the samples completed since the last call: [unix ms when sent, latency ms,
//           ok (1/0), class].
//           On SIGTERM it stops, waits for exchanges in flight, and serves /stats for DRAIN_MS
//           more so the test collects its last numbers.
//   check   calls each of TARGETS once, retrying until it succeeds or DEADLINE_MS passes, prints
//           `RESULT {class: pod or error}`, waits HOLD_MS, and exits 0 when every one succeeded,
//           else 1 (for Jobs and init containers).
//
// Bundled with esbuild into the test image.
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import * as grpc from "@grpc/grpc-js";
import { callerFor, greetingServer, grpcServer, httpServer, parseTargets } from "./app-protocols.ts";

const env = process.env;
const pod = env.HOSTNAME ?? "unknown";
const drainMs = Number(env.DRAIN_MS ?? 5000);

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), pod, msg, ...fields })}\n`);
}

function runServer(): void {
  const port = Number(env.PORT ?? 8080);
  const closers: Array<() => void> = [];
  const web = httpServer(pod, env.CONTAINER_NAME ?? "server");
  web.listen(port, "0.0.0.0", () => log("http listening", { port }));
  closers.push(() => web.close());
  if (env.GRPC_PORT) {
    const server = grpcServer(pod);
    server.bindAsync(`0.0.0.0:${env.GRPC_PORT}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
      if (err) throw err;
      log("grpc listening", { port: bound });
    });
    closers.push(() => server.forceShutdown());
  }
  if (env.GREETING_PORT) {
    const greeting = greetingServer(pod);
    greeting.listen(Number(env.GREETING_PORT), "0.0.0.0", () =>
      log("greeting listening", { port: env.GREETING_PORT }),
    );
    closers.push(() => greeting.close());
  }
  process.once("SIGTERM", () => {
    log("SIGTERM: serving on while the endpoint removal spreads", { drainMs });
    setTimeout(() => {
      for (const close of closers) close();
      process.exit(0);
    }, drainMs).unref();
  });
}

type Sample = [number, number, number, string];

function runClient(): void {
  const rate = Number(env.RATE ?? 10);
  const timeoutMs = Number(env.REQUEST_TIMEOUT_MS ?? 5000);
  const targets = parseTargets(env.TARGETS ?? "http=http://server:8080/");
  const counters = { sent: 0, ok: 0, failed: 0, inFlight: 0 };
  const servers: Record<string, number> = {};
  const errors: string[] = [];
  let samples: Sample[] = [];
  let sending = true;
  let done = false;

  const callers = targets.map(([name, url]) => [name, callerFor(url)] as const);
  const timers = callers.map(([name, caller]) =>
    setInterval(() => {
      if (!sending) return;
      counters.sent++;
      counters.inFlight++;
      const sentAt = Date.now();
      const started = performance.now();
      void caller.call(timeoutMs).then((outcome) => {
        counters.inFlight--;
        samples.push([
          sentAt,
          Math.round((performance.now() - started) * 1000) / 1000,
          outcome.ok ? 1 : 0,
          name,
        ]);
        if (outcome.ok) {
          counters.ok++;
          servers[`${name} ${outcome.pod}`] = (servers[`${name} ${outcome.pod}`] ?? 0) + 1;
        } else {
          counters.failed++;
          errors.push(`${new Date().toISOString()} ${name} ${outcome.error}`);
          if (errors.length > 50) errors.shift();
        }
      });
    }, 1000 / rate),
  );

  const stats = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== "/stats") {
      res.writeHead(404).end();
      return;
    }
    const out = { pod, done, ...counters, servers, errors, samples };
    samples = [];
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(out));
  });
  stats.listen(Number(env.STATS_PORT ?? 9000), "0.0.0.0", () =>
    log("client sending", { targets: Object.fromEntries(targets), rate }),
  );

  process.once("SIGTERM", () => {
    sending = false;
    for (const t of timers) clearInterval(t);
    log("SIGTERM: stopped sending; waiting for exchanges in flight");
    const waitStarted = Date.now();
    const wait = setInterval(() => {
      if (counters.inFlight > 0 && Date.now() - waitStarted < timeoutMs + 1000) return;
      clearInterval(wait);
      done = true;
      for (const [, caller] of callers) caller.close();
      log("client done", { ...counters });
      setTimeout(() => process.exit(0), drainMs).unref();
    }, 50);
  });
}

async function runCheck(): Promise<void> {
  const deadline = Date.now() + Number(env.DEADLINE_MS ?? 60_000);
  const results: Record<string, string> = {};
  let failed = 0;
  for (const [name, url] of parseTargets(env.TARGETS ?? "")) {
    const caller = callerFor(url);
    for (;;) {
      const outcome = await caller.call(5000);
      if (outcome.ok) {
        results[name] = outcome.pod;
        break;
      }
      if (Date.now() > deadline) {
        results[name] = `error: ${outcome.error}`;
        failed++;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    caller.close();
  }
  process.stdout.write(`RESULT ${JSON.stringify(results)}\n`);
  await new Promise((r) => setTimeout(r, Number(env.HOLD_MS ?? 0)));
  process.exit(failed === 0 ? 0 : 1);
}

if (env.MESH_APP_ROLE === "client") runClient();
else if (env.MESH_APP_ROLE === "server") runServer();
else if (env.MESH_APP_ROLE === "check") void runCheck();
else {
  process.stderr.write("MESH_APP_ROLE must be client, server or check\n");
  process.exit(2);
}
