/**
 * Entry point: `node --import tsx proxy/main.ts`. Reads configuration (TRELLIS_PROXY_CONFIG
 * file and TRELLIS_PROXY_* variables), exits 2 with every problem listed when it is invalid,
 * starts the proxy, and drains on SIGTERM/SIGINT.
 *
 * Owns: the process boundary only. Everything else is in proxy.ts.
 */
import pino from "pino";
import { parseConfig } from "./config.ts";
import { loadRawConfig } from "./config-source.ts";
import { startProxy } from "./proxy.ts";

function fail(lines: string[]): never {
  process.stderr.write(`trellis-proxy: invalid configuration\n${lines.map((l) => `  - ${l}`).join("\n")}\n`);
  process.exit(2);
}

let raw: unknown;
try {
  raw = loadRawConfig(process.env);
} catch (err) {
  fail([(err as Error).message]);
}
const parsed = parseConfig(raw);
if (!parsed.ok) fail(parsed.errors);
const config = parsed.config;
const log = pino({ level: config.logLevel, base: { component: "proxy", pid: process.pid } });

const proxy = await startProxy(config, log).catch((err: unknown) => {
  log.error({ err: (err as Error).message }, "proxy failed to start");
  process.exit(1);
});

// Last line of defence: a bug in one connection's handling must not take every other down.
process.on("uncaughtException", (err) => {
  proxy.metrics.processErrors.inc(["uncaught_exception"]);
  log.error({ err: err.message, stack: err.stack }, "uncaught exception");
});
process.on("unhandledRejection", (err) => {
  proxy.metrics.processErrors.inc(["unhandled_rejection"]);
  log.error({ err: String(err) }, "unhandled rejection");
});

log.info({ ports: proxy.ports }, "proxy started");

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "draining");
  void proxy.drain().then(() => {
    log.info({}, "drained");
    process.exit(0);
  });
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
