// Starts a local cluster, prints one JSON line ({kubeconfig, pids, dir}, and with REAL_NODE=1 the
// real node's bridge) and waits for a signal. Used by the teardown tests to own a cluster from a
// separate process.
import { LocalCluster } from "./local-cluster.ts";

const realNode = process.env.REAL_NODE === "1";
const cluster = await LocalCluster.start({ nodes: Number(process.env.NODES ?? 1), realNode });
const bridge = realNode ? cluster.realNode.bridge : undefined;
process.stdout.write(
  `${JSON.stringify({ kubeconfig: cluster.kubeconfigPath, pids: cluster.pids(), dir: cluster.dir, bridge })}\n`,
);
setInterval(() => {}, 1 << 30);
