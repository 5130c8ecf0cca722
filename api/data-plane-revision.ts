// A data-plane revision: what a meshed pod runs — its proxy version and how its traffic is
// captured. The proxy rollout moves the fleet from one revision to another, so a change of either
// (a new proxy version, a switch of the Mesh's capture mode) goes through the same canary, waves,
// analysis and rollback. Written as the version for InitContainer capture, so every revision
// before capture modes existed reads the same, and as "<version>/cni" for CNI capture ("/" is not
// part of a semantic version). Workload templates and pods carry the two halves separately
// (trellis.dev/proxy-version and trellis.dev/capture-mode), which the injector reads.
import { ANNOTATIONS, LABELS } from "./group.ts";
import { type CaptureMode, type Mesh, type MeshSpec, type MeshStatus, targetProxyVersion } from "./mesh.ts";

const CNI_SUFFIX = "/cni";

export function dataPlaneRevision(version: string, mode: CaptureMode = "InitContainer"): string {
  return mode === "CNI" ? `${version}${CNI_SUFFIX}` : version;
}

export function parseRevision(revision: string): { version: string; mode: CaptureMode } {
  return revision.endsWith(CNI_SUFFIX)
    ? { version: revision.slice(0, -CNI_SUFFIX.length), mode: "CNI" }
    : { version: revision, mode: "InitContainer" };
}

const modeOf = (value: string | undefined): CaptureMode => (value === "CNI" ? "CNI" : "InitContainer");

/** A pod's revision, from the labels the injector stamps; undefined for a pod without the proxy. */
export function podRevision(labels: Record<string, string> | undefined): string | undefined {
  const version = labels?.[LABELS.proxyVersion];
  return version === undefined ? undefined : dataPlaneRevision(version, modeOf(labels?.[LABELS.captureMode]));
}

/** A workload template's revision, from the annotations a rollout sets; undefined when it names none. */
export function templateRevision(annotations: Record<string, string> | undefined): string | undefined {
  const version = annotations?.[ANNOTATIONS.proxyVersion];
  return version === undefined
    ? undefined
    : dataPlaneRevision(version, modeOf(annotations?.[ANNOTATIONS.captureMode]));
}

/** The template annotations that put a workload's pods on `revision`. */
export function revisionAnnotations(revision: string): Record<string, string> {
  const { version, mode } = parseRevision(revision);
  return { [ANNOTATIONS.proxyVersion]: version, [ANNOTATIONS.captureMode]: mode };
}

/**
 * The revision a Mesh asks for: its proxy version, with CNI capture once the operator has the
 * plugin ready on every node (status.capture.mode), else InitContainer.
 */
export function targetRevision(
  spec: Pick<MeshSpec, "version" | "proxy">,
  status: MeshStatus | undefined,
): string {
  return dataPlaneRevision(targetProxyVersion(spec), status?.capture?.mode ?? "InitContainer");
}

/**
 * The revision a new pod gets when its workload's template names none: during a rollout (or
 * after one was rolled back) the revision the fleet is moving from; otherwise the fleet's.
 */
export function fleetRevision(mesh: Pick<Mesh, "spec" | "status">): string {
  const rollout = mesh.status?.rollout;
  if (rollout && rollout.state !== "Complete") return rollout.fromVersion;
  return mesh.status?.proxies?.version ?? targetProxyVersion(mesh.spec);
}

/** The proxy version a new pod gets when its workload's template names none. */
export function fleetProxyVersion(mesh: Pick<Mesh, "spec" | "status">): string {
  return parseRevision(fleetRevision(mesh)).version;
}

/** The capture mode a new pod gets when its workload's template names none. */
export function fleetCaptureMode(mesh: Pick<Mesh, "spec" | "status">): CaptureMode {
  return parseRevision(fleetRevision(mesh)).mode;
}
