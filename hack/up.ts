// The main job on the embedded local cluster: start it, install Trellis's CRDs, and keep it
// running until Ctrl-C, printing how to point kubectl at it. `--exit-when-ready` stops after
// set-up (used by the tests of this command).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalCluster } from "../test/cluster/local-cluster.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const exitWhenReady = process.argv.includes("--exit-when-ready");

const cluster = await LocalCluster.start({ nodes: Number(process.env.TRELLIS_NODES ?? 3), verbose: true });
const crds = readdirSync(join(repoRoot, "crds")).filter((f) => f.endsWith(".yaml"));
for (const file of crds) cluster.kubectl(["apply", "--server-side", "-f", join(repoRoot, "crds", file)]);
cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "-l", "app.kubernetes.io/part-of=trellis"]);

const kubectl = cluster.binaries.kubectl;
process.stdout.write(`
Trellis local cluster is up (${cluster.server}).
  export KUBECONFIG=${cluster.kubeconfigPath}
  ${kubectl} get nodes
  ${kubectl} get trellis        # meshes, serviceprofiles and certificates
Installed CRDs: ${crds.join(", ")}
Press Ctrl-C to stop; everything started here stops with it.
`);
if (exitWhenReady) {
  await cluster.stop();
} else {
  await new Promise<never>(() => setInterval(() => {}, 1 << 30));
}
