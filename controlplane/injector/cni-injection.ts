// What a pod meshed in CNI capture mode gets instead of trellis-init: no container with a
// capability, the annotation through which the node's trellis-cni plugin learns the pod's
// capture settings (cni/capture-annotation.ts), and the validator, an unprivileged first init
// container that refuses the pod when its network was set up without capture (cni/validator.ts).
// Everything the pod then holds passes the `restricted` Pod Security Standard.
//
// Owns: the validator's container spec and the choice of a pod's capture mode. Does not own the
// settings (capture/annotations.ts, the same PodCapture both modes render).
import type { V1Container } from "@kubernetes/client-node";
import { ANNOTATIONS, type CaptureMode } from "../../api/index.ts";
import type { PodCapture } from "../../capture/annotations.ts";
import { initFlags } from "../../capture/init.ts";
import { VALIDATOR_CONTAINER } from "../../cni/validator.ts";
import type { InjectionNotice } from "./capture-injection.ts";

/** The validator's user: not root, and not the proxy's (whose connections are never captured). */
export const VALIDATOR_UID = 65532;

/**
 * A pod's capture mode: its workload's (the template annotation a rollout sets, so a pod that
 * restarts keeps its wave's mode), else the fleet's. A value that is no mode is reported and
 * ignored.
 */
export function podCaptureMode(
  annotations: Record<string, string> | undefined,
  fleet: CaptureMode,
): { mode: CaptureMode; notices: InjectionNotice[] } {
  const asked = annotations?.[ANNOTATIONS.captureMode];
  if (asked === undefined || asked === fleet) return { mode: fleet, notices: [] };
  if (asked === "CNI" || asked === "InitContainer") return { mode: asked, notices: [] };
  return {
    mode: fleet,
    notices: [
      {
        reason: "CaptureModeRefused",
        message: `trellis: ${ANNOTATIONS.captureMode} "${asked}" is not InitContainer or CNI; the pod gets the mesh's mode, ${fleet}`,
      },
    ],
  };
}

/** The validator: checks, unprivileged, that the plugin set up capture; fails the pod if not. */
export function validatorContainer(
  capture: PodCapture,
  image: string,
  resources: NonNullable<V1Container["resources"]>,
): V1Container {
  return {
    name: VALIDATOR_CONTAINER,
    image,
    imagePullPolicy: "IfNotPresent",
    args: ["validate", ...initFlags(capture.settings)],
    resources,
    // The kubelet shows the validator's verdict (the cause when it refuses) in the pod's status.
    terminationMessagePolicy: "FallbackToLogsOnError",
    securityContext: {
      runAsUser: VALIDATOR_UID,
      runAsGroup: VALIDATOR_UID,
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
  };
}
