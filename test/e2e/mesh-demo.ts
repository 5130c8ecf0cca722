// The meshed demo application on the real node, shared by the end-to-end test and the run
// command (hack/up.ts): the Trellis images built and imported, the app image (mesh-app.ts on a
// Node runtime), a Mesh that places the control plane on the real node, and a client and a
// server Deployment (2 replicas each) in a namespace the injector meshes.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type BuildOptions, type BuiltImage, buildImages, defaultOptions } from "../../hack/build-images.ts";
import { cacheRoot, repoRoot } from "../cluster/binaries.ts";
import { type LocalCluster, REAL_NODE_LABEL, waitFor } from "../cluster/local-cluster.ts";
import { nodeDir } from "../cluster/node-config.ts";
import { nodeRuntimeImageArchive } from "../cluster/node-images.ts";

export const APP_IMAGE = "localhost/trellis-mesh-app:1";

/**
 * Builds the Trellis images (hack/build-images.ts) into the cache; the archives of `names`. The
 * folder is this checkout's own: several checkouts of the repository on one machine build the
 * same versions from different sources, and a run that starts the operator from its bundle must
 * never pick up another checkout's (it did: an operator without this checkout's objects pruned
 * them mid-test).
 */
export async function buildTrellisImages(
  options: Partial<BuildOptions> & { version: string },
  names: string[],
): Promise<{ images: BuiltImage[]; out: string }> {
  const checkout = createHash("sha256").update(repoRoot).digest("hex").slice(0, 12);
  const out = join(cacheRoot, "e2e-images", checkout, options.proxyVersion ?? options.version);
  const built = await buildImages(defaultOptions({ ...options, out }));
  return { images: built.images.filter((i) => names.includes(i.name)), out };
}

/** The demo app (mesh-app.ts, bundled) on a Node runtime image; returns the archive. */
export async function buildAppImage(): Promise<string> {
  const app = await build({
    entryPoints: [fileURLToPath(new URL("./mesh-app.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    // @grpc/grpc-js is CommonJS and calls require(); an ES module has none unless given one.
    banner: {
      js: "import { createRequire as __appRequire } from 'node:module'; const require = __appRequire(import.meta.url);",
    },
  });
  return nodeRuntimeImageArchive(APP_IMAGE, { "/app/mesh-app.mjs": app.outputFiles[0]?.text ?? "" });
}

const placement = `
      nodeSelector: { ${REAL_NODE_LABEL}: "true" }
      tolerations: [{ key: ${REAL_NODE_LABEL}, operator: Exists, effect: NoSchedule }]`;

/** The Mesh's control-plane placement on the real node (spec.controlPlane fields). */
export const controlPlaneOnRealNode = `
    nodeSelector: { ${REAL_NODE_LABEL}: "true" }
    tolerations: [{ key: ${REAL_NODE_LABEL}, operator: Exists, effect: NoSchedule }]`;

/** What the demo client calls, one class per protocol and form of name: all ordinary addresses. */
export function demoTargets(namespace: string): string {
  const fqdn = `server.${namespace}.svc.cluster.local`;
  return [
    `h1-fqdn=http://${fqdn}:8080/`,
    "h1-short=http://server:8080/",
    `h2-fqdn=h2c://${fqdn}:8080/`,
    "h2-short=h2c://server:8080/",
    "grpc=grpc://server:9090",
    "tcp=greeting://server:3306",
  ].join(",");
}

/**
 * The demo client's deadline per exchange in the end-to-end tests (mesh.test.ts, cni.test.ts). The application's own default is 5 s; on this shared
 * 2-core machine the real node's pods compete with every other suite's processes (at a load of
 * 20–40 the pods' cgroup gets a few percent of the CPU), so an exchange can succeed after more
 * than 5 s for reasons that have nothing to do with the mesh. Such exchanges are not failures;
 * the table reports them (column "> 5 s") beside p99. Errors — a 5xx, a reset, a refused or
 * closed connection, a TLS failure — fail the test whatever their latency.
 */
export const E2E_REQUEST_TIMEOUT_MS = 15_000;
/**
 * Client and server Deployments in `namespace`, applications that know nothing of the mesh: the
 * client calls the server's Service by name over HTTP/1.1 and HTTP/2 (full and short names),
 * gRPC and a server-first TCP protocol, `rate` times a second each, giving each exchange
 * `requestTimeoutMs` (the application's own deadline). The server's probes are one of
 * each kind (grpc, httpGet, tcpSocket): the injector rewrites them for capture. A headless
 * Service lets clients outside the mesh reach the server's pods (there is no kube-proxy here).
 */
export function demoWorkloads(
  namespace: string,
  rate: number,
  options: { restricted?: boolean; replicas?: number; requestTimeoutMs?: number } = {},
): string {
  // What the `restricted` Pod Security Standard asks of every container, when the namespace
  // enforces it (test/e2e/cni.test.ts); the applications are the same either way.
  const securityContext = `{ runAsUser: 1000, runAsNonRoot: true, readOnlyRootFilesystem: true${
    options.restricted
      ? ", allowPrivilegeEscalation: false, capabilities: { drop: [ALL] }, seccompProfile: { type: RuntimeDefault }"
      : ""
  } }`;
  return `
apiVersion: v1
kind: ServiceAccount
metadata: { name: server, namespace: ${namespace} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: client, namespace: ${namespace} }
---
apiVersion: v1
kind: Service
metadata: { name: server, namespace: ${namespace} }
spec:
  selector: { app: server }
  ports:
  - { name: http, port: 8080, targetPort: http }
  - { name: grpc, port: 9090, targetPort: grpc }
  - { name: greeting, port: 3306, targetPort: greeting }
---
apiVersion: v1
kind: Service
metadata: { name: server-headless, namespace: ${namespace} }
spec:
  clusterIP: None
  selector: { app: server }
  ports:
  - { name: http, port: 8080, targetPort: http }
  - { name: greeting, port: 3306, targetPort: greeting }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: server, namespace: ${namespace}, labels: { app: server } }
spec:
  replicas: ${options.replicas ?? 2}
  selector: { matchLabels: { app: server } }
  template:
    metadata: { labels: { app: server } }
    spec:${placement}
      serviceAccountName: server
      terminationGracePeriodSeconds: 30
      containers:
      - name: server
        image: ${APP_IMAGE}
        imagePullPolicy: Never
        args: ["/app/mesh-app.mjs"]
        env:
        - { name: MESH_APP_ROLE, value: server }
        - { name: PORT, value: "8080" }
        - { name: GRPC_PORT, value: "9090" }
        - { name: GREETING_PORT, value: "3306" }
        - { name: DRAIN_MS, value: "6000" }
        ports:
        - { name: http, containerPort: 8080 }
        - { name: grpc, containerPort: 9090 }
        - { name: greeting, containerPort: 3306 }
        startupProbe: { grpc: { port: 9090 }, periodSeconds: 1, failureThreshold: 30 }
        readinessProbe: { httpGet: { path: /ready, port: http }, periodSeconds: 2 }
        livenessProbe: { tcpSocket: { port: greeting }, periodSeconds: 10 }
        securityContext: ${securityContext}
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: client, namespace: ${namespace}, labels: { app: client } }
spec:
  replicas: ${options.replicas ?? 2}
  selector: { matchLabels: { app: client } }
  template:
    metadata:
      labels: { app: client }
      # The test reads the client's counters on this port from the host, past the proxy.
      annotations: { config.trellis.dev/skip-inbound-ports: "9000" }
    spec:${placement}
      serviceAccountName: client
      terminationGracePeriodSeconds: 30
      containers:
      - name: client
        image: ${APP_IMAGE}
        imagePullPolicy: Never
        args: ["/app/mesh-app.mjs"]
        env:
        - { name: MESH_APP_ROLE, value: client }
        - { name: TARGETS, value: "${demoTargets(namespace)}" }
        - { name: RATE, value: "${rate}" }
        - { name: REQUEST_TIMEOUT_MS, value: "${options.requestTimeoutMs ?? 5000}" }
        - { name: DRAIN_MS, value: "10000" }
        ports: [{ name: stats, containerPort: 9000 }]
        securityContext: ${securityContext}
`;
}

/**
 * Creates `namespace` opted in to injection and waits until the API server's admission chain
 * injects a probe pod there (a server-side dry run: nothing is created). The injector learns of
 * the namespace from its watch; pods created before it has are not meshed (failurePolicy Ignore).
 * Returns the seconds that took.
 */
export async function meshedNamespace(cluster: LocalCluster, namespace: string): Promise<number> {
  cluster.kubectl(["create", "namespace", namespace]);
  cluster.kubectl(["annotate", "namespace", namespace, "trellis.dev/inject=enabled"]);
  const probe = JSON.stringify({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "probe", namespace },
    spec: { containers: [{ name: "probe", image: APP_IMAGE }] },
  });
  const started = Date.now();
  await waitFor(
    async () =>
      cluster
        .kubectl(["create", "--dry-run=server", "-o", "json", "-f", "-"], probe)
        .includes('"trellis-proxy"'),
    60_000,
    `the injector to inject a dry-run pod in ${namespace}`,
    1000,
  );
  return (Date.now() - started) / 1000;
}

/**
 * The real node's CNI folders, as its containerd configuration names them (under the cluster's
 * dir): what a Mesh's spec.proxy.capture.cni says for capture mode CNI (docs/cni.md).
 */
export function cniFolders(clusterDir: string): { binDir: string; confDir: string } {
  const config = readFileSync(join(nodeDir(clusterDir), "containerd", "config.toml"), "utf8");
  const value = (key: string) => {
    const m = new RegExp(`^\\s*${key} = "([^"]+)"`, "m").exec(config);
    if (!m?.[1]) throw new Error(`no ${key} in the real node's containerd configuration`);
    return m[1];
  };
  return { binDir: value("bin_dir"), confDir: value("conf_dir") };
}
