// The one-shot workloads of the end-to-end test's capture checks, beside the steady demo
// (mesh-demo.ts), all running the same unmodified application (mesh-app.ts):
//
//   namespace `capture` (meshed)
//     duo           one pod, two containers serving two ports (8081 alpha, 8082 beta)
//     meshed-check  a Job: an init container that needs the network (it calls the demo server
//                   through the mesh before the app starts), then calls an unmeshed server, both
//                   ports of duo, and the demo server over gRPC and the greeting protocol; holds
//                   HOLD_MS after its RESULT so the test can read its proxy's metrics, then exits
//                   and the Job completes (the proxy is a native sidecar)
//   namespace `plain` (not meshed)
//     plain-server  an unmeshed server behind an ordinary Service
//     unmeshed-check a Job calling the meshed demo server in plaintext, through its headless
//                   Service (no kube-proxy: an unmeshed pod cannot use a ClusterIP)
//     no-capabilities a pod whose trellis-init was not granted NET_ADMIN/NET_RAW (as a policy
//                   that strips them would leave it): it must fail and say why
import { APP_IMAGE } from "./mesh-demo.ts";

export const CAPTURE_NS = "capture";
export const PLAIN_NS = "plain";

const realNode = `
      nodeSelector: { trellis.dev/real-node: "true" }
      tolerations: [{ key: trellis.dev/real-node, operator: Exists, effect: NoSchedule }]
      terminationGracePeriodSeconds: 1`;

const container = (name: string, env: Record<string, string>, extra = "") => `
      - name: ${name}
        image: ${APP_IMAGE}
        imagePullPolicy: Never
        args: ["/app/mesh-app.mjs"]
        env:${Object.entries(env)
          .map(([k, v]) => `\n        - { name: ${k}, value: "${v}" }`)
          .join("")}
        securityContext: { runAsUser: 1000, runAsNonRoot: true, readOnlyRootFilesystem: true }${extra}`;

/** The meshed check's targets: the class name is what RESULT reports each under. */
export function meshedCheckTargets(demo: string): string {
  const server = `server.${demo}.svc.cluster.local`;
  return [
    `unmeshed=http://plain-server.${PLAIN_NS}.svc.cluster.local:8080/`,
    "duo-alpha=http://duo:8081/",
    "duo-beta=h2c://duo:8082/",
    `grpc=grpc://${server}:9090`,
    `tcp=greeting://${server}:3306`,
  ].join(",");
}

export function captureCheckWorkloads(demo: string, holdMs: number, initImage: string): string {
  return `
apiVersion: v1
kind: Namespace
metadata: { name: ${PLAIN_NS} }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: plain-server, namespace: ${PLAIN_NS} }
spec:
  selector: { matchLabels: { app: plain-server } }
  template:
    metadata: { labels: { app: plain-server } }
    spec:${realNode}
      containers:${container("server", { MESH_APP_ROLE: "server", PORT: "8080" }, "\n        readinessProbe: { httpGet: { path: /, port: 8080 }, periodSeconds: 1 }")}
---
apiVersion: v1
kind: Service
metadata: { name: plain-server, namespace: ${PLAIN_NS} }
spec:
  selector: { app: plain-server }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: duo, namespace: ${CAPTURE_NS} }
spec:
  selector: { matchLabels: { app: duo } }
  template:
    metadata: { labels: { app: duo } }
    spec:${realNode}
      containers:${container("alpha", { MESH_APP_ROLE: "server", PORT: "8081", CONTAINER_NAME: "alpha" }, "\n        ports: [{ name: alpha, containerPort: 8081 }]")}${container("beta", { MESH_APP_ROLE: "server", PORT: "8082", CONTAINER_NAME: "beta" }, "\n        ports: [{ name: beta, containerPort: 8082 }]")}
---
apiVersion: v1
kind: Service
metadata: { name: duo, namespace: ${CAPTURE_NS} }
spec:
  selector: { app: duo }
  ports:
  - { name: alpha, port: 8081, targetPort: alpha }
  - { name: beta, port: 8082, targetPort: beta }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: checker, namespace: ${CAPTURE_NS} }
---
apiVersion: batch/v1
kind: Job
metadata: { name: meshed-check, namespace: ${CAPTURE_NS} }
spec:
  backoffLimit: 0
  template:
    metadata: { labels: { app: meshed-check } }
    spec:${realNode}
      serviceAccountName: checker
      restartPolicy: Never
      initContainers:${container("wait-for-server", {
        MESH_APP_ROLE: "check",
        TARGETS: `server=http://server.${demo}.svc.cluster.local:8080/`,
        DEADLINE_MS: "120000",
      })}
      containers:${container("check", {
        MESH_APP_ROLE: "check",
        TARGETS: meshedCheckTargets(demo),
        DEADLINE_MS: "120000",
        HOLD_MS: String(holdMs),
      })}
---
apiVersion: batch/v1
kind: Job
metadata: { name: unmeshed-check, namespace: ${PLAIN_NS} }
spec:
  backoffLimit: 0
  template:
    spec:${realNode}
      restartPolicy: Never
      containers:${container("check", {
        MESH_APP_ROLE: "check",
        TARGETS: `http=http://server-headless.${demo}.svc.cluster.local:8080/,tcp=greeting://server-headless.${demo}.svc.cluster.local:3306`,
        DEADLINE_MS: "120000",
      })}
---
apiVersion: v1
kind: Pod
metadata: { name: no-capabilities, namespace: ${PLAIN_NS} }
spec:${realNode}
      restartPolicy: Never
      initContainers:
      - name: trellis-init
        image: ${initImage}
        imagePullPolicy: Never
        terminationMessagePolicy: FallbackToLogsOnError
        securityContext:
          runAsUser: 65532
          runAsNonRoot: true
          allowPrivilegeEscalation: false
          readOnlyRootFilesystem: true
          capabilities: { drop: [ALL] }
      containers:${container("app", { MESH_APP_ROLE: "server" })}
`;
}
