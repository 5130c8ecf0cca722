// The identity side of a Mesh reconcile, read from the caches: the anchor Certificates and
// Secrets, the issuer's Secret, the proxies' reports (pod annotations), and the namespaces that
// need the trust bundle. It runs the rotation plan and returns what to render (Certificates and
// trust-bundle ConfigMaps), the bundle, the trustAnchor status and whether identity holds the
// mesh back. Reports: a proxy's pod carries trellis.dev/trust-bundle-fingerprints (anchors it
// trusts, comma-separated) and trellis.dev/leaf-anchor-fingerprint (anchor its leaf chains to),
// written by the identity service from the proxy's own report (POST /v1/report).
// A user-provided anchor (trustAnchor.source Secret) is checked and copied instead of generated
// and rotated (external-anchor.ts).
import type { KubernetesObject, V1Pod, V1Secret } from "@kubernetes/client-node";
import { ANNOTATIONS, type Certificate, type Mesh, type MeshSpec } from "../../api/index.ts";
import { fingerprint, pemBlocks } from "../../pki/index.ts";
import {
  type ProxyReport,
  planRotation,
  type RotationDecision,
  type TrustAnchorStatus,
} from "../rotation/rotation-plan.ts";
import {
  checkExternalAnchor,
  EXTERNAL_ANCHOR_SECRET,
  renderExternalAnchorSecret,
} from "./external-anchor.ts";
import {
  anchorCertificateName,
  DESTINATION_CERTIFICATE,
  INJECTOR_CERTIFICATE,
  ISSUER_CERTIFICATE,
  renderIdentityCertificates,
} from "./identity-objects.ts";
import type { Blocker } from "./mesh-status.ts";
import { type KubeObject, ownedLabels, TRUST_BUNDLE_CONFIGMAP } from "./render.ts";

export interface IdentityCaches {
  certificate(name: string): Certificate | undefined;
  secret(name: string): V1Secret | undefined;
  injectedPods(): V1Pod[];
  /** Namespaces whose pods are meshed (annotated, or holding injected pods), besides the control plane's. */
  meshedNamespaces(): string[];
  /** The user's anchor Secret (spec.identity.trustAnchor.secretRef), read for this reconcile; undefined if absent. */
  externalAnchorSecret(): V1Secret | undefined;
}

/** A user's anchor Secret is read, not watched: changes are noticed within this time. */
export const EXTERNAL_ANCHOR_RECHECK_MS = 60_000;

export interface IdentityPlan {
  objects: KubeObject[];
  bundlePem: string;
  rotation: RotationDecision;
  blocker: Blocker | undefined;
}

const isReady = (c: Certificate | undefined) =>
  c?.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True") ?? false;

function secretPem(secret: V1Secret | undefined, key: string): string {
  return Buffer.from(secret?.data?.[key] ?? "", "base64").toString("utf8");
}

export function reportOf(pod: V1Pod): ProxyReport {
  const a = pod.metadata?.annotations ?? {};
  const trusted = (a[ANNOTATIONS.trustBundleFingerprints] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return { trusted, leafAnchor: a[ANNOTATIONS.leafAnchorFingerprint] };
}

export function planIdentity(
  mesh: Mesh & KubernetesObject,
  spec: MeshSpec,
  caches: IdentityCaches,
  now: Date,
): IdentityPlan {
  if (spec.identity.trustAnchor.source === "Secret") return planExternalIdentity(mesh, spec, caches, now);
  const name = mesh.metadata?.name ?? "";
  const uid = mesh.metadata?.uid ?? "";
  const anchorFacts = (g: number) => {
    const cert = caches.certificate(anchorCertificateName(g));
    const notAfter = cert?.status?.notAfter;
    return {
      ready: isReady(cert),
      fingerprint: cert?.status?.fingerprint,
      notAfter: notAfter ? new Date(notAfter) : undefined,
    };
  };
  const issuerCa = pemBlocks(secretPem(caches.secret(ISSUER_CERTIFICATE), "ca.crt"), "CERTIFICATE")[0];
  const pods = caches
    .injectedPods()
    .filter((p) => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp);
  const rotation = planRotation({
    spec,
    status: mesh.status?.trustAnchor,
    rotateRequest: mesh.metadata?.annotations?.[ANNOTATIONS.rotateTrustAnchor],
    anchor: anchorFacts,
    issuerAnchor: issuerCa ? fingerprint(issuerCa) : undefined,
    proxies: pods.map(reportOf),
    now,
  });
  const labels = ownedLabels(name);
  const objects = renderIdentityCertificates({
    meshName: name,
    meshUid: uid,
    spec,
    anchorGenerations: rotation.anchorGenerations,
    signingGeneration: rotation.signingGeneration,
    labels,
  });
  const bundlePem = rotation.bundleGenerations
    .map((g) => secretPem(caches.secret(anchorCertificateName(g)), "tls.crt"))
    .join("");
  objects.push(...bundleConfigMaps(caches, bundlePem, labels, { name, uid }));
  rotation.status.bundleFingerprints = pemBlocks(bundlePem, "CERTIFICATE").map((der) => fingerprint(der));
  let blocker: Blocker | undefined;
  if (rotation.status.rotationPhase === "Stable") {
    blocker = waitingForCertificates(caches, [anchorCertificateName(rotation.signingGeneration)]);
  } else {
    blocker = {
      reason: "TrustAnchorRotation",
      message: `${rotation.status.rotationPhase}: ${rotation.status.message ?? ""}`,
      degraded: false,
      phase: "RotatingTrustAnchor",
      keepsReady: true,
    };
  }
  return { objects, bundlePem, rotation, blocker };
}

function bundleConfigMaps(
  caches: IdentityCaches,
  bundlePem: string,
  labels: Record<string, string>,
  owner: { name: string; uid: string },
): KubeObject[] {
  return caches.meshedNamespaces().map((ns) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: TRUST_BUNDLE_CONFIGMAP,
      namespace: ns,
      labels,
      ownerReferences: [{ apiVersion: "trellis.dev/v1alpha1", kind: "Mesh", ...owner, controller: true }],
    },
    data: { "ca-bundle.crt": bundlePem },
  }));
}

function waitingForCertificates(caches: IdentityCaches, anchors: string[]): Blocker | undefined {
  const waiting = [...anchors, ISSUER_CERTIFICATE, INJECTOR_CERTIFICATE, DESTINATION_CERTIFICATE].filter(
    (n) => !isReady(caches.certificate(n)),
  );
  if (waiting.length === 0) return undefined;
  return {
    reason: "WaitingForIdentity",
    message: `waiting for certificates ${waiting.join(", ")} to be issued`,
    degraded: false,
    phase: "Installing",
  };
}

/**
 * A user-provided anchor: checked, copied for the issuer to reference, published; never rotated
 * by Trellis. A Secret that stops passing the checks leaves the last good copy in use, with the
 * mesh Degraded and a Warning Event naming what is wrong.
 */
function planExternalIdentity(
  mesh: Mesh & KubernetesObject,
  spec: MeshSpec,
  caches: IdentityCaches,
  now: Date,
): IdentityPlan {
  const owner = { name: mesh.metadata?.name ?? "", uid: mesh.metadata?.uid ?? "" };
  const ref = spec.identity.trustAnchor.secretRef ?? { namespace: "", name: "" };
  const labels = ownedLabels(owner.name);
  const objects = renderIdentityCertificates({
    meshName: owner.name,
    meshUid: owner.uid,
    spec,
    anchorGenerations: [],
    signingGeneration: 0,
    labels,
  });
  const check = checkExternalAnchor(caches.externalAnchorSecret(), ref, now);
  const kept = caches.secret(EXTERNAL_ANCHOR_SECRET);
  const keptPem = secretPem(kept, "trust-bundle.crt");
  const source = `Secret ${ref.namespace}/${ref.name}`;
  const events: RotationDecision["events"] = [];
  let bundlePem: string;
  let blocker: Blocker | undefined;
  let status: TrustAnchorStatus;
  if (check.ok) {
    bundlePem = check.anchor.bundlePem;
    objects.push(renderExternalAnchorSecret(check.anchor, bundlePem, labels, owner));
    status = {
      rotationPhase: "Stable",
      fingerprint: check.anchor.fingerprint,
      notAfter: check.anchor.notAfter.toISOString(),
      message: `anchor provided by the user in ${source}; Trellis does not rotate it (to rotate, update that Secret: docs/identity.md)`,
    };
    blocker = waitingForCertificates(caches, []);
  } else {
    bundlePem = keptPem;
    if (kept && keptPem) {
      const anchorPem = secretPem(kept, "tls.crt");
      objects.push(
        renderExternalAnchorSecret({ anchorPem, keyPem: secretPem(kept, "tls.key") }, keptPem, labels, owner),
      );
    }
    const message = `${check.message}${keptPem ? "; the last valid anchor stays in use" : ""}`;
    status = { ...mesh.status?.trustAnchor, rotationPhase: "Stable", message };
    blocker = {
      reason: check.reason,
      message,
      degraded: true,
      phase: "Degraded",
      keepsReady: keptPem !== "",
    };
    const previous = mesh.status?.conditions?.find((c) => c.type === "Degraded")?.reason;
    if (previous !== check.reason) events.push({ type: "Warning", reason: check.reason, message });
  }
  objects.push(...bundleConfigMaps(caches, bundlePem, labels, owner));
  status.bundleFingerprints = pemBlocks(bundlePem, "CERTIFICATE").map((der) => fingerprint(der));
  const rotation: RotationDecision = {
    anchorGenerations: [],
    signingGeneration: 0,
    bundleGenerations: [],
    status,
    events,
    requeueAfterMs: EXTERNAL_ANCHOR_RECHECK_MS,
  };
  return { objects, bundlePem, rotation, blocker };
}
