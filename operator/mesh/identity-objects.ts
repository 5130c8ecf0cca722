// The Certificates a mesh's identity needs, rendered from its spec: the trust anchor (unless
// the user brings one in a Secret), the issuer that signs workload leaves, and the injector's
// webhook's and the destination service's serving certificates. The Certificate controller issues and renews them.
import { API_VERSION, type Certificate, CONTROL_PLANE_NAMESPACE, type MeshSpec } from "../../api/index.ts";
import { EXTERNAL_ANCHOR_SECRET } from "./external-anchor.ts";
import type { KubeObject } from "./render.ts";

export const ISSUER_CERTIFICATE = "trellis-identity-issuer";
export const INJECTOR_CERTIFICATE = "trellis-injector";
export const INJECTOR_SECRET = "trellis-injector-tls";
export const DESTINATION_CERTIFICATE = "trellis-destination";
export const DESTINATION_SECRET = "trellis-destination-tls";

export function anchorCertificateName(generation: number): string {
  return `trellis-trust-anchor-${generation}`;
}

export interface IdentityInput {
  meshName: string;
  meshUid: string;
  spec: MeshSpec;
  /** Anchor generations that must exist (two during a rotation). */
  anchorGenerations: number[];
  /** The anchor generation that signs the issuer. */
  signingGeneration: number;
  labels: Record<string, string>;
}

export function renderIdentityCertificates(input: IdentityInput): KubeObject[] {
  const { spec } = input;
  const metadata = (name: string) => ({
    name,
    namespace: CONTROL_PLANE_NAMESPACE,
    labels: input.labels,
    ownerReferences: [
      { apiVersion: API_VERSION, kind: "Mesh", name: input.meshName, uid: input.meshUid, controller: true },
    ],
  });
  const certificate = (name: string, certSpec: Certificate["spec"]): KubeObject => ({
    apiVersion: API_VERSION,
    kind: "Certificate",
    metadata: metadata(name),
    spec: certSpec,
  });
  const out: KubeObject[] = [];
  const generated = spec.identity.trustAnchor.source === "Generated";
  if (generated) {
    for (const g of input.anchorGenerations) {
      out.push(
        certificate(anchorCertificateName(g), {
          type: "TrustAnchor",
          secretName: anchorCertificateName(g),
          commonName: `root.${spec.identity.trustDomain}`,
          duration: spec.identity.anchorLifetime,
        }),
      );
    }
  }
  const signingAnchor = input.signingGeneration;
  out.push(
    certificate(ISSUER_CERTIFICATE, {
      type: "Issuer",
      secretName: ISSUER_CERTIFICATE,
      commonName: `identity.${spec.identity.trustDomain}`,
      duration: spec.identity.issuerLifetime,
      // A user's anchor is the operator's copy of their Secret (external-anchor.ts).
      issuerRef: generated
        ? { name: anchorCertificateName(signingAnchor) }
        : { kind: "Secret", name: EXTERNAL_ANCHOR_SECRET },
    }),
    certificate(INJECTOR_CERTIFICATE, {
      type: "Serving",
      secretName: INJECTOR_SECRET,
      duration: "720h",
      issuerRef: { name: ISSUER_CERTIFICATE },
      dnsNames: [
        `trellis-injector.${CONTROL_PLANE_NAMESPACE}.svc`,
        `trellis-injector.${CONTROL_PLANE_NAMESPACE}.svc.cluster.local`,
      ],
      ipAddresses: ["127.0.0.1"],
    }),
    // Proxies reach the destination service by its Service name and check that name.
    certificate(DESTINATION_CERTIFICATE, {
      type: "Serving",
      secretName: DESTINATION_SECRET,
      duration: "720h",
      issuerRef: { name: ISSUER_CERTIFICATE },
      dnsNames: [
        `trellis-destination.${CONTROL_PLANE_NAMESPACE}.svc`,
        `trellis-destination.${CONTROL_PLANE_NAMESPACE}.svc.cluster.local`,
      ],
    }),
  );
  return out;
}
