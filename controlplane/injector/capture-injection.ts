// What transparent capture adds to a meshed pod, as pure functions the injector composes: the
// trellis-init container (first of all init containers) with the pod's capture settings as
// flags, its volume, the proxy's capture settings, and the notices an admission must carry
// (refused annotations, a Pod Security level that forbids trellis-init, a hostNetwork pod).
//
// Owns: trellis-init's container spec and the capture-related proxy variables. Does not own:
// the rules (capture/ruleset.ts), the annotations' meaning (capture/annotations.ts) or probes
// (probe-rewrite.ts).
import type { V1Container, V1EnvVar, V1Pod, V1Volume } from "@kubernetes/client-node";
import type { PodCapture } from "../../capture/annotations.ts";
import type { AppProbe } from "../../capture/app-probes.ts";
import { formatPortList } from "../../capture/capture-settings.ts";
import { initFlags } from "../../capture/init.ts";

export const INIT_CONTAINER = "trellis-init";
const CAPTURE_ANNOTATIONS_PREFIX = "config.trellis.dev/";
/** The non-root user trellis-init runs as (its image's user; its entrypoint raises the two capabilities). */
export const INIT_UID = 65532;
const XTABLES_LOCK_VOLUME = "trellis-init-xtables-lock";

/** A reason (CamelCase, for the Event) and a sentence (for the admission warning and the Event). */
export interface InjectionNotice {
  reason: string;
  message: string;
}

/** Pod Security levels whose `enforce` forbids NET_ADMIN and NET_RAW, i.e. trellis-init. */
const FORBIDDING_LEVELS = new Set(["baseline", "restricted"]);
export const POD_SECURITY_ENFORCE = "pod-security.kubernetes.io/enforce";

export function captureNotices(
  capture: PodCapture,
  namespace: string,
  namespaceLabels: Record<string, string>,
): InjectionNotice[] {
  const notices: InjectionNotice[] = [];
  if (capture.problems.length > 0) {
    notices.push({
      reason: "CaptureAnnotationsRefused",
      message: `trellis: ${capture.problems.join("; ")}; no ${CAPTURE_ANNOTATIONS_PREFIX} capture annotation was applied, the pod is meshed with the defaults`,
    });
  }
  const level = namespaceLabels[POD_SECURITY_ENFORCE];
  if (level && FORBIDDING_LEVELS.has(level)) {
    notices.push({
      reason: "PodSecurityForbidsCapture",
      message: `trellis: namespace ${namespace} enforces Pod Security "${level}", which forbids NET_ADMIN and NET_RAW for ${INIT_CONTAINER}: the pod will be rejected (label the namespace privileged, or set trellis.dev/inject: disabled)`,
    });
  }
  return notices;
}

export function hostNetworkNotice(): InjectionNotice {
  return {
    reason: "HostNetworkNotMeshed",
    message:
      "trellis: pod not meshed: hostNetwork pods are never meshed (capturing their traffic would capture the node's)",
  };
}

/**
 * The pod's containers and sidecars that run as the proxy's UID: the rules never capture that
 * UID's connections, so theirs leave the pod without mTLS, metrics or policy. Istio reserves its
 * proxy's UID the same way (application requirements; `istioctl analyze` IST0144,
 * InvalidApplicationUID) and does not refuse such a pod; nor does Trellis: it warns. Init
 * containers that run to completion may use the UID on purpose (docs/capture.md), and an image's
 * own USER is not seen here.
 */
export function proxyUidNotices(pod: V1Pod, proxyUid: number): InjectionNotice[] {
  const podUid = pod.spec?.securityContext?.runAsUser;
  const running = [
    ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always"),
    ...(pod.spec?.containers ?? []),
  ];
  const names = running
    .filter((c) => (c.securityContext?.runAsUser ?? podUid) === proxyUid)
    .map((c) => c.name);
  if (names.length === 0) return [];
  const shown =
    names.length > 3 ? `${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : names.join(", ");
  return [
    {
      reason: "ProxyUidNotCaptured",
      message: `trellis: ${shown} run${names.length === 1 ? "s" : ""} as the proxy's UID ${proxyUid}, whose connections are never captured: they bypass the proxy (no mTLS, no policy); run as another user`,
    },
  ];
}

/** trellis-init: installs the capture rules in the pod's network namespace, then exits. */
export function initContainer(
  capture: PodCapture,
  image: string,
  resources: NonNullable<V1Container["resources"]>,
): V1Container {
  return {
    name: INIT_CONTAINER,
    image,
    imagePullPolicy: "IfNotPresent",
    args: initFlags(capture.settings),
    resources,
    // The kubelet shows trellis-init's last words (the cause when it fails) in the pod's status.
    terminationMessagePolicy: "FallbackToLogsOnError",
    securityContext: {
      runAsUser: INIT_UID,
      runAsGroup: INIT_UID,
      runAsNonRoot: true,
      privileged: false,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    volumeMounts: [{ name: XTABLES_LOCK_VOLUME, mountPath: "/run" }],
  };
}

export function initVolumes(): V1Volume[] {
  return [{ name: XTABLES_LOCK_VOLUME, emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }];
}

/** The proxy's capture variables (the names and forms are in /work/coord/16-contract.md and docs/capture.md). */
export function captureProxyEnv(capture: PodCapture, probes: Record<string, AppProbe>): V1EnvVar[] {
  const opaque = capture.applied.opaquePorts
    ? [{ name: "TRELLIS_PROXY_OPAQUE_PORTS", value: formatPortList(capture.opaquePorts) || "none" }]
    : [];
  return [
    { name: "TRELLIS_PROXY_CAPTURE", value: "true" },
    { name: "TRELLIS_PROXY_POD_NAMESPACE", value: "$(TRELLIS_POD_NAMESPACE)" },
    ...opaque,
    ...(Object.keys(probes).length > 0
      ? [{ name: "TRELLIS_PROXY_APP_PROBES", value: JSON.stringify(probes) }]
      : []),
  ];
}
