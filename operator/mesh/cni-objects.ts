// The trellis-cni DaemonSet and its ServiceAccount, rendered for a phase of cni-plan.ts. Pure;
// golden-file tested (render.test.ts, the cni cases).
//
// Privileges, each for a reason (docs/cni.md says more):
//  - runs as root (UID 0) with every capability dropped: the node's CNI folders belong to root,
//    and root owning them needs no capability to write there; nothing else;
//  - two hostPath volumes, the node's CNI binary and configuration folders, and nothing else of
//    the node: no host PID, IPC or devices; the root filesystem is read-only (an emptyDir holds
//    the readiness marker);
//  - hostNetwork, so that it starts even when the node's pod network (the very configuration it
//    repairs) is broken; it opens no socket;
//  - no API access at all: no token is mounted and the ServiceAccount is bound to nothing (the
//    plugin reads pod annotations from the runtime, not from the API);
//  - system-node-critical and tolerating every taint, like the node's own network plugin: a node
//    without it cannot start meshed pods.
import type { V1DaemonSet, V1ServiceAccount } from "@kubernetes/client-node";
import { CONTROL_PLANE_NAMESPACE, LABELS, type MeshSpec } from "../../api/index.ts";
import { meshImages } from "../release.ts";
import { CNI_PHASE_LABEL, type CniPhase } from "./cni-plan.ts";
import { type KubeObject, meta, type RenderInput } from "./render.ts";

export const CNI_NAME = "trellis-cni";
export const CNI_COMPONENT = "cni";
/** Where the node's folders are mounted in the installer's container. */
const MOUNTS = { bin: "/host/cni/bin", conf: "/host/cni/net.d", state: "/run/trellis-cni" } as const;

export interface CniRenderInput {
  mesh: RenderInput["mesh"];
  /** The control plane's active version: the plugin is upgraded with it. */
  version: string;
  phase: CniPhase;
}

const selector = { "app.kubernetes.io/name": CNI_NAME };

/** The installer's flags, shared by its command and its readiness probe. */
function dirFlags(): string[] {
  return [`--bin-dir=${MOUNTS.bin}`, `--conf-dir=${MOUNTS.conf}`, `--state-dir=${MOUNTS.state}`];
}

export function renderCni(input: CniRenderInput): KubeObject[] {
  if (input.phase === "Absent") return [];
  const spec: MeshSpec = input.mesh.spec;
  const labels = { [LABELS.component]: CNI_COMPONENT, [LABELS.version]: input.version };
  const renderInput = { mesh: input.mesh };
  const sa: V1ServiceAccount & KubeObject = {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta(renderInput, CNI_NAME, { [LABELS.component]: CNI_COMPONENT }),
    automountServiceAccountToken: false,
  };
  const uninstall = input.phase === "Uninstall";
  const role = uninstall ? "uninstall" : "install";
  const image = meshImages(spec.controlPlane.imageRegistry, input.version).cni;
  const ds: V1DaemonSet & KubeObject = {
    apiVersion: "apps/v1",
    kind: "DaemonSet",
    metadata: meta(renderInput, CNI_NAME, { ...labels, [CNI_PHASE_LABEL]: input.phase }),
    spec: {
      selector: { matchLabels: selector },
      // Installing or upgrading: one node at a time, each checked ready (its plugin answering)
      // before the next. Removing: every node at once (nothing new can break).
      updateStrategy: {
        type: "RollingUpdate",
        rollingUpdate: { maxUnavailable: (uninstall ? "100%" : 1) as never },
      },
      template: {
        metadata: {
          labels: { ...selector, ...labels, [CNI_PHASE_LABEL]: input.phase },
          annotations: { "trellis.dev/inject": "disabled" },
        },
        spec: {
          serviceAccountName: CNI_NAME,
          automountServiceAccountToken: false,
          hostNetwork: true,
          priorityClassName: "system-node-critical",
          tolerations: [{ operator: "Exists" }],
          nodeSelector: { "kubernetes.io/os": "linux" },
          terminationGracePeriodSeconds: 10,
          securityContext: { seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            {
              name: uninstall ? "uninstall-cni" : "install-cni",
              image,
              imagePullPolicy: "IfNotPresent",
              args: [role, ...dirFlags()],
              readinessProbe: {
                exec: {
                  command: [
                    "/usr/bin/node",
                    "/app/trellis-cni.mjs",
                    "ready",
                    ...dirFlags(),
                    ...(uninstall ? ["--uninstalled"] : []),
                  ],
                },
                periodSeconds: 5,
                timeoutSeconds: 5,
              },
              resources: {
                requests: { cpu: "10m", memory: "40Mi" },
                // Copying the plugin tree (about 100 MB) goes through this cgroup's page cache.
                limits: { memory: "256Mi" },
              },
              securityContext: {
                runAsUser: 0,
                runAsGroup: 0,
                runAsNonRoot: false,
                privileged: false,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "cni-bin", mountPath: MOUNTS.bin },
                { name: "cni-conf", mountPath: MOUNTS.conf },
                { name: "state", mountPath: MOUNTS.state },
              ],
            },
          ],
          volumes: [
            { name: "cni-bin", hostPath: { path: spec.proxy.capture.cni.binDir, type: "Directory" } },
            { name: "cni-conf", hostPath: { path: spec.proxy.capture.cni.confDir, type: "Directory" } },
            { name: "state", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          ],
        },
      },
    },
  };
  return [sa, ds];
}

/** The namespace the DaemonSet lives in (the control plane's). */
export const CNI_NAMESPACE = CONTROL_PLANE_NAMESPACE;
