// A trust anchor the user brings (Mesh spec.identity.trustAnchor.source: Secret): the checks the
// user's Secret must pass, and the copy of it the operator keeps in the control-plane namespace
// (trellis-trust-anchor-external) for the issuer Certificate to reference (issuerRef.kind
// Secret). The anchor is tls.crt's first certificate, a self-signed ECDSA P-256 CA whose key is
// tls.key; certificates in the user's ca.crt are published in the trust bundle beside it, which
// is how the user rotates: add the new anchor to ca.crt, then swap tls.crt/tls.key, then drop the
// old one (docs/identity.md). Trellis never rotates a user's anchor.
// Pure. Owns the checks and the copy; does not read the Secret (mesh-controller.ts).
import { X509Certificate } from "node:crypto";
import type { V1Secret } from "@kubernetes/client-node";
import { CONTROL_PLANE_NAMESPACE } from "../../api/index.ts";
import {
  createIssuer,
  fingerprint,
  generateKeyPair,
  type KeyPair,
  PkiError,
  pemBlocks,
  privateKeyFromPem,
  toPem,
  verifyChain,
} from "../../pki/index.ts";
import type { KubeObject } from "./render.ts";

export const EXTERNAL_ANCHOR_SECRET = "trellis-trust-anchor-external";

export interface ExternalAnchor {
  anchorPem: string;
  keyPem: string;
  /** The anchor, then any other anchors of the user's ca.crt: what proxies trust. */
  bundlePem: string;
  fingerprint: string;
  notAfter: Date;
}

export type ExternalAnchorCheck =
  | { ok: true; anchor: ExternalAnchor }
  | { ok: false; reason: string; message: string };

let probeKeys: KeyPair | undefined;

function refused(reason: string, message: string): ExternalAnchorCheck {
  return { ok: false, reason, message };
}

/** Checks the user's Secret (undefined: it does not exist) at `now`. */
export function checkExternalAnchor(
  secret: V1Secret | undefined,
  ref: { namespace: string; name: string },
  now: Date,
): ExternalAnchorCheck {
  const where = `Secret ${ref.namespace}/${ref.name}`;
  if (!secret) {
    return refused(
      "TrustAnchorSecretNotFound",
      `${where} (spec.identity.trustAnchor.secretRef) does not exist; create it with tls.crt and tls.key of a CA`,
    );
  }
  const text = (key: string) => Buffer.from(secret.data?.[key] ?? "", "base64").toString("utf8");
  let anchorDer: Buffer | undefined;
  let extra: Buffer[];
  try {
    anchorDer = pemBlocks(text("tls.crt"), "CERTIFICATE")[0];
    extra = pemBlocks(text("ca.crt"), "CERTIFICATE");
  } catch {
    return refused("TrustAnchorInvalid", `${where}: tls.crt or ca.crt is not PEM certificates`);
  }
  const keyPem = text("tls.key");
  if (!anchorDer || !keyPem.includes("PRIVATE KEY")) {
    return refused(
      "TrustAnchorInvalid",
      `${where} must hold tls.crt (the CA certificate) and tls.key (its key)`,
    );
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(anchorDer);
  } catch {
    return refused("TrustAnchorInvalid", `${where}: tls.crt is not a readable X.509 certificate`);
  }
  if (!cert.ca)
    return refused(
      "TrustAnchorInvalid",
      `${where}: tls.crt is not a CA certificate (basicConstraints CA:FALSE)`,
    );
  if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
    return refused(
      "TrustAnchorInvalid",
      `${where}: tls.crt is not self-signed; a trust anchor is a root, put its intermediate elsewhere`,
    );
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now.getTime())
    return refused(
      "TrustAnchorExpired",
      `${where}: the anchor expired at ${notAfter.toISOString()}; replace it`,
    );
  if (new Date(cert.validFrom).getTime() > now.getTime())
    return refused("TrustAnchorNotYetValid", `${where}: the anchor is valid only from ${cert.validFrom}`);
  // The probe proves what the Certificate controller will do with it: the key is P-256 and
  // belongs to the certificate, and what it signs verifies to the anchor (CA, keyCertSign).
  try {
    probeKeys ??= generateKeyPair();
    const probe = createIssuer({
      commonName: "trellis probe",
      publicKey: probeKeys.publicKey,
      signer: { certificateDer: anchorDer, privateKey: privateKeyFromPem(keyPem) },
      notAfter: new Date(now.getTime() + 3_600_000),
    });
    const verdict = verifyChain([probe.der], [anchorDer], now);
    if (!verdict.ok)
      return refused("TrustAnchorInvalid", `${where}: the anchor cannot sign an issuer (${verdict.reason})`);
  } catch (err) {
    const why =
      err instanceof PkiError ? `${err.code}: ${err.message}` : "the key or certificate is unusable";
    return refused(
      "TrustAnchorInvalid",
      `${where}: ${why} (Trellis signs with ECDSA P-256; tls.key must be the anchor's P-256 key)`,
    );
  }
  const seen = new Set<string>();
  const bundle = [anchorDer, ...extra].filter((der) => {
    const fp = fingerprint(der);
    if (seen.has(fp)) return false;
    seen.add(fp);
    return true;
  });
  const anchorPem = toPem("CERTIFICATE", anchorDer);
  return {
    ok: true,
    anchor: {
      anchorPem,
      keyPem,
      bundlePem: bundle.map((der) => toPem("CERTIFICATE", der)).join(""),
      fingerprint: fingerprint(anchorDer),
      notAfter,
    },
  };
}

/** The operator's copy, which the issuer Certificate references (issuerRef kind Secret). */
export function renderExternalAnchorSecret(
  anchor: Pick<ExternalAnchor, "anchorPem" | "keyPem">,
  /** The bundle published with it, kept so that it survives a later invalid user Secret. */
  bundlePem: string,
  labels: Record<string, string>,
  owner: { name: string; uid: string },
): KubeObject {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    metadata: {
      name: EXTERNAL_ANCHOR_SECRET,
      namespace: CONTROL_PLANE_NAMESPACE,
      labels,
      ownerReferences: [
        {
          apiVersion: "trellis.dev/v1alpha1",
          kind: "Mesh",
          name: owner.name,
          uid: owner.uid,
          controller: true,
        },
      ],
    },
    data: {
      "tls.crt": b64(anchor.anchorPem),
      "tls.key": b64(anchor.keyPem),
      "ca.crt": b64(anchor.anchorPem),
      "trust-bundle.crt": b64(bundlePem),
    },
  };
}
