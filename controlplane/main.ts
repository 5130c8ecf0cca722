// `trellis-controlplane <component> [flags]`: one program for the control-plane components
// (injector, identity and destination), each a thin entry over its own folder.
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { Manager } from "../kube/index.ts";
import { parseDestinationFlags, runDestination } from "./destination/destination.ts";
import { parseIdentityFlags, runIdentity } from "./identity/identity.ts";
import { parseInjectorFlags, runInjector } from "./injector/injector.ts";

const COMPONENTS = ["injector", "identity", "destination"];
const [component, ...argv] = process.argv.slice(2);
if (component === undefined || !COMPONENTS.includes(component)) {
  process.stderr.write(`usage: trellis-controlplane ${COMPONENTS.join("|")} [flags]\n`);
  process.exit(2);
}
const { values } = parseArgs({
  args: argv,
  options: {
    kubeconfig: { type: "string" },
    "admin-port": { type: "string", default: "9990" },
    "admin-host": { type: "string", default: "0.0.0.0" },
    "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
  },
  strict: false,
});
const logger = pino({ level: String(values["log-level"]), base: { app: `trellis-${component}` } });
const kubeConfig = new KubeConfig();
if (typeof values.kubeconfig === "string") kubeConfig.loadFromFile(values.kubeconfig);
else kubeConfig.loadFromDefault();
const manager = new Manager({
  kubeConfig,
  name: `trellis-${component}`,
  namespace: process.env.TRELLIS_NAMESPACE ?? "trellis-system",
  leaderElection: false,
  metricsPort: Number(values["admin-port"]),
  metricsHost: String(values["admin-host"]),
  logger,
});

let stop: () => Promise<void>;
switch (component) {
  case "injector":
    stop = await runInjector(manager, parseInjectorFlags(argv), logger);
    break;
  case "identity":
    stop = await runIdentity(manager, parseIdentityFlags(argv), logger);
    break;
  case "destination":
    stop = await runDestination(manager, parseDestinationFlags(argv), logger);
    break;
  default:
    process.stderr.write("usage: trellis-controlplane injector|identity|destination [flags]\n");
    process.exit(2);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void stop().then(() => process.exit(0)));
}
