// The Certificate kind: a trust anchor, an issuer or a serving certificate that Trellis issues
// and renews into a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt). Keys live only in
// that Secret; status carries the public facts (validity, fingerprint, renewal time).
import { type Static, Type } from "@sinclair/typebox";
import { Conditions, Duration, type KindDefinition, type ObjectMeta } from "./common-schema.ts";

export const CertificateSpec = Type.Object({
  type: Type.Union([Type.Literal("TrustAnchor"), Type.Literal("Issuer"), Type.Literal("Serving")], {
    description:
      "TrustAnchor: self-signed root. Issuer: intermediate CA signed by issuerRef. Serving: TLS server certificate.",
  }),
  secretName: Type.String({ minLength: 1, maxLength: 253, pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" }),
  commonName: Type.Optional(Type.String({ maxLength: 64 })),
  duration: Duration("Lifetime of each issued certificate.", "2160h"),
  renewBefore: Type.Optional(Duration("Renew this long before expiry; default a third of duration.")),
  issuerRef: Type.Optional(
    Type.Object({
      name: Type.String({
        minLength: 1,
        maxLength: 253,
        description: "A Certificate of type TrustAnchor or Issuer in this namespace (or a Secret, see kind).",
      }),
      kind: Type.Optional(
        Type.Union([Type.Literal("Certificate"), Type.Literal("Secret")], {
          default: "Certificate",
          description:
            "Certificate: another Certificate signs. Secret: a kubernetes.io/tls Secret in this namespace holding a CA (tls.crt, tls.key, ca.crt) and labeled app.kubernetes.io/managed-by=trellis, such as the copy of a user-provided trust anchor a Mesh keeps.",
        }),
      ),
    }),
  ),
  dnsNames: Type.Optional(Type.Array(Type.String({ maxLength: 253 }), { maxItems: 100 })),
  ipAddresses: Type.Optional(Type.Array(Type.String({ maxLength: 45 }), { maxItems: 100 })),
});
export type CertificateSpec = Static<typeof CertificateSpec>;

export const CertificateStatus = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  conditions: Type.Optional(Conditions),
  notBefore: Type.Optional(Type.String({ format: "date-time" })),
  notAfter: Type.Optional(Type.String({ format: "date-time" })),
  renewalTime: Type.Optional(Type.String({ format: "date-time" })),
  fingerprint: Type.Optional(Type.String({ description: "SHA-256 of the certificate (DER), hex." })),
  serialNumber: Type.Optional(Type.String()),
  issuerFingerprint: Type.Optional(Type.String()),
  revision: Type.Optional(Type.Integer({ description: "Incremented at each issuance." })),
});
export type CertificateStatus = Static<typeof CertificateStatus>;

export interface Certificate {
  apiVersion: "trellis.dev/v1alpha1";
  kind: "Certificate";
  metadata: ObjectMeta;
  spec: CertificateSpec;
  status?: CertificateStatus;
}

export const CertificateKind: KindDefinition<typeof CertificateSpec, typeof CertificateStatus> = {
  kind: "Certificate",
  plural: "certificates",
  singular: "certificate",
  shortNames: ["tcert"],
  scope: "Namespaced",
  description: "A trust anchor, issuer or serving certificate issued and renewed by Trellis into a Secret.",
  spec: CertificateSpec,
  status: CertificateStatus,
  printerColumns: [
    { name: "Type", type: "string", jsonPath: ".spec.type" },
    { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: "Secret", type: "string", jsonPath: ".spec.secretName" },
    // `date` columns print a future time as <invalid> (kubectl shows ages, not times to come):
    // the timestamps themselves are what a person reads here.
    {
      name: "Expires",
      type: "string",
      jsonPath: ".status.notAfter",
      description: "End of validity of the current certificate (RFC 3339, UTC).",
    },
    {
      name: "Renewal",
      type: "string",
      jsonPath: ".status.renewalTime",
      priority: 1,
      description: "When Trellis renews it (RFC 3339, UTC).",
    },
    { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
  ],
  specValidations: [
    {
      rule: "self.type == 'TrustAnchor' || has(self.issuerRef)",
      message: "issuerRef is required unless type is TrustAnchor",
      fieldPath: ".issuerRef",
    },
    {
      rule: "!has(self.renewBefore) || duration(self.renewBefore) < duration(self.duration)",
      message: "renewBefore must be shorter than duration",
      fieldPath: ".renewBefore",
    },
    {
      rule: "self.type != 'Serving' || (has(self.dnsNames) && size(self.dnsNames) > 0) || (has(self.ipAddresses) && size(self.ipAddresses) > 0)",
      message: "a Serving certificate needs dnsNames or ipAddresses",
    },
  ],
};
