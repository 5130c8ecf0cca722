// Starts a local cluster, prints one JSON line ({kubeconfig, pids, dir}) and waits for a signal.
// Used by the teardown test to own a cluster from a separate process.
import { LocalCluster } from "./local-cluster.ts";

const cluster = await LocalCluster.start({ nodes: Number(process.env.NODES ?? 1) });
process.stdout.write(
  `${JSON.stringify({ kubeconfig: cluster.kubeconfigPath, pids: cluster.pids(), dir: cluster.dir })}\n`,
);
setInterval(() => {}, 1 << 30);
