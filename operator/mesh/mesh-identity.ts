// The identity side of a Mesh reconcile, read from the caches: the anchor Certificates and
// Secrets, the issuer's Secret, the proxies' reports (pod annotations), and the namespaces that
// need the trust bundle. It runs the rotation plan and returns what to render (Certificates and
// trust-bundle ConfigMaps), the bundle, the trustAnchor status and whether identity holds the
// mesh back. Reports: a proxy's pod carries trellis.dev/trust-bundle-fingerprints (anchors it
// trusts, comma-separated) and trellis.dev/leaf-anchor-fingerprint (anchor its leaf chains to).
import type { KubernetesObject, V1Pod, V1Secret } from "@kubernetes/client-node";
import { ANNOTATIONS, type Certificate, type Mesh, type MeshSpec } from "../../api/index.ts";
import { fingerprint, pemBlocks } from "../../pki/index.ts";
import { type ProxyReport, planRotation, type RotationDecision } from "../rotation/rotation-plan.ts";
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
}

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
  for (const ns of caches.meshedNamespaces()) {
    objects.push({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: TRUST_BUNDLE_CONFIGMAP,
        namespace: ns,
        labels,
        ownerReferences: [{ apiVersion: "trellis.dev/v1alpha1", kind: "Mesh", name, uid, controller: true }],
      },
      data: { "ca-bundle.crt": bundlePem },
    });
  }
  rotation.status.bundleFingerprints = pemBlocks(bundlePem, "CERTIFICATE").map((der) => fingerprint(der));
  const waiting = [
    anchorCertificateName(rotation.signingGeneration),
    ISSUER_CERTIFICATE,
    INJECTOR_CERTIFICATE,
    DESTINATION_CERTIFICATE,
  ].filter((n) => !isReady(caches.certificate(n)));
  let blocker: Blocker | undefined;
  if (waiting.length > 0 && rotation.status.rotationPhase === "Stable") {
    blocker = {
      reason: "WaitingForIdentity",
      message: `waiting for certificates ${waiting.join(", ")} to be issued`,
      degraded: false,
      phase: "Installing",
    };
  } else if (rotation.status.rotationPhase !== "Stable") {
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
