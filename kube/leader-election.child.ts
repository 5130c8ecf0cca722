// A tiny operator process for leader-election tests: a Manager with leader election whose one
// controller reconciles ConfigMaps labelled test=leader every 100 ms (resync) and prints a JSON
// line per reconcile (start and end), and one when it starts leading. SIGTERM stops it
// gracefully (releasing the lease); losing the lease exits with status 1. Run by
// leader-election.test.ts with KUBECONFIG and IDENTITY set; not part of the library.
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { Manager } from "./manager.ts";

const identity = process.env.IDENTITY ?? "child";
const print = (event: string, fields: Record<string, unknown> = {}) =>
  process.stdout.write(`${JSON.stringify({ event, identity, t: Date.now(), ...fields })}\n`);

const kubeConfig = new KubeConfig();
kubeConfig.loadFromFile(process.env.KUBECONFIG ?? "");
const manager = new Manager({
  kubeConfig,
  name: "trellis-leader-test",
  namespace: "leader",
  leaderElection: true,
  leaderElectionTimings: { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 },
  identity,
  metricsPort: 0,
  metricsHost: "127.0.0.1",
  logger: pino({ level: process.env.TRELLIS_LOG_LEVEL ?? "silent" }, pino.destination(2)),
});
const configMaps = manager.informer({
  apiVersion: "v1",
  kind: "ConfigMap",
  plural: "configmaps",
  namespaced: true,
  namespace: "leader",
  labelSelector: "test=leader",
});
manager
  .controller({
    name: "leader-test",
    resyncMs: 100,
    reconcile: async ({ key }) => {
      print("reconcile-start", { key });
      await new Promise((resolve) => setTimeout(resolve, 20));
      print("reconcile-end", { key });
    },
  })
  .watches(configMaps);

process.on("SIGTERM", () => {
  void manager.stop().then(() => {
    print("stopped");
    process.exit(0);
  });
});
const serving = setInterval(() => {
  if (manager.port === undefined) return;
  clearInterval(serving);
  print("serving", { port: manager.port });
}, 20);
print("started");
await manager.start();
if (manager.isLeader) print("leading");
