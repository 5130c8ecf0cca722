// The main job on the embedded local cluster: start it, install Trellis's CRDs, and keep it
// running until Ctrl-C, printing how to point kubectl at it. `--exit-when-ready` stops after
// set-up (used by the tests of this command).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalCluster } from "../test/cluster/local-cluster.ts";
import { startOperator } from "../test/operator-process.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const exitWhenReady = process.argv.includes("--exit-when-ready");

const cluster = await LocalCluster.start({ nodes: Number(process.env.TRELLIS_NODES ?? 3), verbose: true });
const crds = readdirSync(join(repoRoot, "crds")).filter((f) => f.endsWith(".yaml"));
for (const file of crds) cluster.kubectl(["apply", "--server-side", "-f", join(repoRoot, "crds", file)]);
cluster.kubectl([
  "wait",
  "--for=condition=Established",
  "--timeout=60s",
  "crd",
  "-l",
  "app.kubernetes.io/part-of=trellis",
]);

const operator = await startOperator(cluster, ["--no-leader-elect"]);
const example = join(repoRoot, "docs/examples/mesh.yaml");
cluster.kubectl(["apply", "-f", example]);
cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=120s", "mesh/default"]);
process.stdout.write(cluster.kubectl(["get", "meshes"]));

const kubectl = cluster.binaries.kubectl;
process.stdout.write(`
Trellis local cluster is up (${cluster.server}).
  export KUBECONFIG=${cluster.kubeconfigPath}
  ${kubectl} get nodes
  ${kubectl} get trellis        # meshes, serviceprofiles and certificates
  ${kubectl} get meshes -w      # the example Mesh (docs/examples/mesh.yaml) becoming Ready
Installed CRDs: ${crds.join(", ")}
The operator runs on this host (pid ${operator.process.child.pid}, metrics on 127.0.0.1:${operator.port}, log ${operator.logFile}).
Press Ctrl-C to stop; everything started here stops with it.
`);
if (exitWhenReady) {
  await operator.stop();
  await cluster.stop();
} else {
  await new Promise<never>(() => setInterval(() => {}, 1 << 30));
}
