// The API group of Trellis and the well-known names (labels, annotations, finalizers) that
// the operator, the control plane and users share. Defined once here.
export const GROUP = "trellis.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export const LABELS = {
  managedBy: "app.kubernetes.io/managed-by",
  partOf: "app.kubernetes.io/part-of",
  component: "app.kubernetes.io/component",
  version: "app.kubernetes.io/version",
  mesh: "trellis.dev/mesh",
  revision: "trellis.dev/revision",
  proxyVersion: "trellis.dev/proxy-version",
  captureMode: "trellis.dev/capture-mode",
} as const;

export const ANNOTATIONS = {
  inject: "trellis.dev/inject",
  rotateTrustAnchor: "trellis.dev/rotate-trust-anchor",
  proxyVersion: "trellis.dev/proxy-version",
  /** InitContainer or CNI: the capture mode of a workload's pods (set by a rollout, like the version). */
  captureMode: "trellis.dev/capture-mode",
  restartedAt: "trellis.dev/restarted-at",
  /** The status.upgradePlan.id a user approved (spec.upgrade.approval: Manual). */
  approveUpgrade: "trellis.dev/approve-upgrade",
  trustBundleFingerprints: "trellis.dev/trust-bundle-fingerprints",
  leafAnchorFingerprint: "trellis.dev/leaf-anchor-fingerprint",
} as const;

export const FINALIZER = "trellis.dev/finalizer";
export const FIELD_MANAGER = "trellis-operator";
export const MANAGED_BY = "trellis";
export const CONTROL_PLANE_NAMESPACE = "trellis-system";

/** The audience of the projected ServiceAccount token a proxy presents to the identity service. */
export const IDENTITY_AUDIENCE = "identity.trellis.dev";
