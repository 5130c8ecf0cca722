// The main job on the embedded local cluster: start it (KWOK nodes and, as root, a real node),
// install Trellis's CRDs and operator and a Mesh, and keep it running until Ctrl-C, printing how
// to point kubectl at it. On the real node the control plane runs as pods from the Trellis
// images (built here) and a meshed demo app (client and server with injected proxies) sends
// real traffic. `--no-real-node` starts KWOK nodes only; `--exit-when-ready` stops after set-up
// (hack/up.test.ts).
import { mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import semver from "semver";
import pkg from "../package.json" with { type: "json" };
import { LocalCluster, waitFor } from "../test/cluster/local-cluster.ts";
import {
  buildAppImage,
  buildTrellisImages,
  cniFolders,
  controlPlaneOnRealNode,
  demoWorkloads,
  meshedNamespace,
} from "../test/e2e/mesh-demo.ts";
import { type OperatorProcess, startOperator } from "../test/operator-process.ts";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const exitWhenReady = process.argv.includes("--exit-when-ready");
const isRoot = process.getuid?.() === 0;
const realNode = !process.argv.includes("--no-real-node") && isRoot;
if (!realNode && !process.argv.includes("--no-real-node"))
  process.stderr.write("not root: starting KWOK nodes only (the real node needs root; docs/real-node.md)\n");
const DEMO = "demo";
/**
 * A second proxy release for README's canaried rollout example (`"proxy":{"version":...}`): the
 * same proxy built under the next patch version, so the example works here as written.
 */
const NEXT_PROXY = semver.inc(pkg.version, "patch") as string;

let archives: string[] = [];
if (realNode) {
  process.stderr.write(
    `building the Trellis ${pkg.version} images, proxy ${NEXT_PROXY} and the demo app image\n`,
  );
  const { images } = await buildTrellisImages({ version: pkg.version }, [
    "controlplane",
    "init",
    "cni",
    "proxy",
  ]);
  const next = await buildTrellisImages({ version: pkg.version, proxyVersion: NEXT_PROXY }, ["proxy"]);
  archives = [...images.map((i) => i.archive), ...next.images.map((i) => i.archive), await buildAppImage()];
}

const cluster = await LocalCluster.start({
  nodes: Number(process.env.TRELLIS_NODES ?? 3),
  verbose: true,
  realNode,
});
let operator: OperatorProcess | undefined;
try {
  operator = await setUp();
} catch (err) {
  process.stderr.write(`set-up failed: ${(err as Error).stack ?? err}\n`);
  await operator?.stop();
  await cluster.stop();
  process.exit(1);
}

async function setUp(): Promise<OperatorProcess> {
  for (const archive of archives) await cluster.realNode.importImage(archive);
  const crds = readdirSync(join(repoRoot, "crds")).filter((f) => f.endsWith(".yaml"));
  for (const file of crds) cluster.kubectl(["apply", "--server-side", "-f", join(repoRoot, "crds", file)]);
  await cluster.kubectlAsync([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd",
    "-l",
    "app.kubernetes.io/part-of=trellis",
  ]);

  // With leader election, as its Deployment runs it: `kubectl trellis check` sees it by its Lease.
  operator = await startOperator(cluster, []);
  const example = join(repoRoot, "docs/examples/mesh.yaml");
  if (realNode) {
    // The example's defaults, with the version of the images built above and the control plane
    // placed on the real node.
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: ${pkg.version}
  controlPlane:${controlPlaneOnRealNode}
  # Where the real node's runtime keeps its CNI plugins, for capture mode CNI (docs/cni.md).
  proxy: { capture: { cni: { binDir: ${cniFolders(cluster.dir).binDir}, confDir: ${cniFolders(cluster.dir).confDir} } } }
`,
    );
  } else {
    cluster.kubectl(["apply", "-f", example]);
  }
  await cluster.kubectlAsync(["wait", "--for=condition=Ready", "--timeout=180s", "mesh/default"]);
  process.stdout.write(cluster.kubectl(["get", "meshes"]));
  if (realNode) {
    await meshedNamespace(cluster, DEMO);
    cluster.kubectl(["apply", "-f", "-"], demoWorkloads(DEMO, 2));
    await waitFor(
      async () => {
        // A pod is Ready when its app containers and its sidecars (the proxy) are.
        const ready = await cluster.kubectlAsync([
          "-n",
          DEMO,
          "get",
          "pods",
          "-o",
          `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{' '}{end}`,
        ]);
        return (
          ready
            .trim()
            .split(" ")
            .filter((r) => r === "True").length === 4
        );
      },
      180_000,
      "the demo pods (app and proxy) Ready",
    );
    process.stdout.write(cluster.kubectl(["-n", DEMO, "get", "pods", "-o", "wide"]));
  }

  const bin = toolsOnPath(cluster);
  process.stdout.write(`
Trellis local cluster is up (${cluster.server}). Put kubectl and kubectl trellis on PATH, pointed at it:

  export PATH="${bin}:$PATH" KUBECONFIG="${cluster.kubeconfigPath}"

  kubectl get nodes
  kubectl get trellis                # meshes, serviceprofiles and certificates
  kubectl trellis check --proxies    # the cluster, the operator, the Mesh and its data plane
Installed CRDs: ${crds.join(", ")}
${
  realNode
    ? `The control plane runs as pods on the real node (kubectl -n trellis-system get pods).
The demo app in namespace ${DEMO} knows nothing of the mesh: its client calls http://server:8080/
(HTTP/1.1 and HTTP/2), grpc://server:9090 and a TCP service on server:3306, and every call is
captured by its pod's proxy and carried to the server's with mutual TLS. To see it:
  kubectl trellis stat ${DEMO}              # success rate, RPS, latency, mTLS share per workload, from the proxies
  kubectl -n ${DEMO} get pods -o wide
  curl -s http://<client pod IP>:4191/metrics | grep -E '^(request_total|tcp_forward_total)'
      # tls="mtls" and peer_identity="spiffe://cluster.local/ns/${DEMO}/sa/server" on every series
  curl -s http://<server pod IP>:4191/metrics | grep '^request_total'   # peer: .../sa/client
  curl http://<client pod IP>:9000/stats     # the client's own counters (pod IPs are on this host's bridge)
Roll the demo's proxies to ${NEXT_PROXY} (built above) through a canary and waves:
  kubectl trellis upgrade plan --proxy-version ${NEXT_PROXY}   # what it will do, changing nothing
  kubectl patch mesh default --type=merge -p '{"spec":{"proxy":{"version":"${NEXT_PROXY}"}}}'
  kubectl trellis rollout status --watch
Capture without privileged pods (the trellis-cni plugin on the node, then the same canaried rollout):
  kubectl patch mesh default --type=merge -p '{"spec":{"proxy":{"capture":{"mode":"CNI"}}}}'
  kubectl get mesh default -o jsonpath='{.status.capture}'`
    : "No real node: control-plane pods are scheduled on KWOK nodes and do not run."
}
The operator runs on this host (pid ${operator.process.child.pid}, metrics on 127.0.0.1:${operator.port}, log ${operator.logFile}).
Press Ctrl-C to stop; everything started here stops with it.
`);
  return operator;
}

/** A folder holding only kubectl (the cluster's) and kubectl-trellis (this checkout's), for PATH. */
function toolsOnPath(c: LocalCluster): string {
  const bin = join(c.dir, "bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(c.binaries.kubectl, join(bin, "kubectl"));
  symlinkSync(join(repoRoot, "bin", "kubectl-trellis"), join(bin, "kubectl-trellis"));
  return bin;
}

if (exitWhenReady) {
  await operator.stop();
  await cluster.stop();
} else {
  await new Promise<never>(() => setInterval(() => {}, 1 << 30));
}
