// `trellis operator`: runs the reconcilers against a kubeconfig (in-cluster when none is given),
// with leader election, health and metrics. Thin: flags → Manager → controllers.
import { parseArgs } from "node:util";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { FIELD_MANAGER } from "../api/index.ts";
import { Manager } from "../kube/index.ts";
import { CertificateController } from "./certificates/certificate-controller.ts";
import { MeshController } from "./mesh/mesh-controller.ts";
import { ProfileController } from "./profiles/profile-controller.ts";
import { OPERATOR_VERSION } from "./release.ts";
import { RolloutController } from "./rollout/rollout-controller.ts";

export async function runOperator(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: "string" },
      namespace: { type: "string", default: process.env.POD_NAMESPACE ?? "default" },
      "leader-elect": { type: "boolean", default: true },
      "no-leader-elect": { type: "boolean", default: false },
      "metrics-port": { type: "string", default: "8080" },
      "metrics-host": { type: "string", default: "0.0.0.0" },
      "injector-url": { type: "string" },
      "log-level": { type: "string", default: process.env.LOG_LEVEL ?? "info" },
    },
    strict: true,
  });
  const logger = pino({
    level: values["log-level"],
    base: { app: "trellis-operator", version: OPERATOR_VERSION },
  });
  const kubeConfig = new KubeConfig();
  if (values.kubeconfig) kubeConfig.loadFromFile(values.kubeconfig);
  else kubeConfig.loadFromDefault();
  const manager = new Manager({
    kubeConfig,
    name: FIELD_MANAGER,
    namespace: values.namespace ?? "default",
    leaderElection: values["leader-elect"] === true && values["no-leader-elect"] !== true,
    metricsPort: Number(values["metrics-port"]),
    metricsHost: values["metrics-host"],
    logger,
  });
  new CertificateController(manager);
  new ProfileController(manager);
  new RolloutController(manager, { injectorUrl: values["injector-url"] });
  new MeshController(manager, { injectorUrl: values["injector-url"], operatorVersion: OPERATOR_VERSION });
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "stopping");
      void manager.stop().then(() => process.exit(0));
    });
  }
  await manager.start();
}
