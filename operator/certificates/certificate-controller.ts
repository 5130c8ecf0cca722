// The Certificate controller: issues each Certificate into its kubernetes.io/tls Secret and
// renews it at its renewal time, or when its spec or its issuer's certificate changes (so an
// issuer re-signed by a new anchor re-issues what it signed). The issuer is another Certificate,
// or (issuerRef.kind Secret) a Trellis-labeled CA Secret, e.g. a Mesh's copy of a user-provided
// anchor. Keys live only in the Secret: never in status, logs or Events. A missing or unusable
// issuer is a condition, not a crash.
import type { KubernetesObject, V1Secret } from "@kubernetes/client-node";
import {
  API_VERSION,
  type Certificate,
  type CertificateStatus,
  LABELS,
  MANAGED_BY,
  validateCertificateSpec,
} from "../../api/index.ts";
import {
  type Informer,
  isConflict,
  type Manager,
  objectKey,
  type ReconcileRequest,
  type ReconcileResult,
  setCondition,
} from "../../kube/index.ts";
import { parseCertificate } from "../../pki/index.ts";
import { RESOURCES } from "../resources.ts";
import { writeStatusIfChanged } from "../status-write.ts";
import { certificateOf, decideIssuance, SECRET_ANNOTATIONS, specHash } from "./issuance-policy.ts";
import { issuerMaterial, issueSecretData } from "./issue.ts";
import { checkCertificateSpec } from "./spec-checks.ts";

const CERTIFICATE_LABEL = "trellis.dev/certificate";
/** Longest single wait before looking again (setTimeout's limit is ~24.8 days). */
const MAX_REQUEUE_MS = 12 * 3600_000;

type Verdict =
  | { ready: true; reason: string; message: string }
  | { ready: false; reason: string; message: string };

export class CertificateController {
  private readonly certificates: Informer<Certificate & KubernetesObject>;
  private readonly secrets: Informer<V1Secret & KubernetesObject>;

  constructor(
    private readonly manager: Manager,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.certificates = manager.informer(RESOURCES.certificate);
    this.secrets = manager.informer(RESOURCES.ownedSecret);
    manager
      .controller({ name: "certificate", reconcile: (r) => this.reconcile(r) })
      .watches(this.certificates)
      .watches(this.certificates, (c) => this.childrenOf(c.metadata?.namespace, c.metadata?.name))
      .watches(this.secrets, (s) => {
        const owner = s.metadata?.labels?.[CERTIFICATE_LABEL];
        const ns = s.metadata?.namespace;
        const signed = this.childrenOf(ns, s.metadata?.name, "Secret");
        return owner && ns ? [`${ns}/${owner}`, ...this.childrenOf(ns, owner), ...signed] : signed;
      });
  }

  private childrenOf(
    namespace: string | undefined,
    name: string | undefined,
    kind: "Certificate" | "Secret" = "Certificate",
  ): string[] {
    if (!namespace || !name) return [];
    return this.certificates
      .list(namespace)
      .filter((c) => c.spec?.issuerRef?.name === name && (c.spec.issuerRef.kind ?? "Certificate") === kind)
      .map((c) => objectKey(c));
  }

  /** The Secret holding the issuer's key material, or why there is none to use. */
  private issuerSecret(ref: { name: string; kind?: string | undefined }, ns: string): V1Secret | Verdict {
    if (ref.kind === "Secret") {
      const secret = this.secrets.get(`${ns}/${ref.name}`);
      if (!secret) {
        return {
          ready: false,
          reason: "IssuerNotFound",
          message: `issuerRef names Secret ${ref.name}, which does not exist in namespace ${ns} with the label ${LABELS.managedBy}=${MANAGED_BY}`,
        };
      }
      if (!issuerMaterial(secret)) {
        return {
          ready: false,
          reason: "IssuerInvalid",
          message: `issuerRef names Secret ${ref.name}, which lacks tls.crt, tls.key or ca.crt`,
        };
      }
      return secret;
    }
    const issuer = this.certificates.get(`${ns}/${ref.name}`);
    const blocked = this.checkIssuer(ref.name, ns, issuer);
    if (blocked) return blocked;
    const secret = this.secrets.get(`${ns}/${issuer?.spec.secretName}`);
    if (!secret || !issuerMaterial(secret)) {
      return {
        ready: false,
        reason: "IssuerNotReady",
        message: `issuer ${ref.name} has not been issued yet`,
      };
    }
    return secret;
  }

  async reconcile(request: ReconcileRequest): Promise<ReconcileResult> {
    const cert = this.certificates.get(request.key);
    if (!cert || cert.metadata?.deletionTimestamp) return;
    const ns = cert.metadata?.namespace ?? "default";
    const checked = validateCertificateSpec(cert.spec);
    const problems = checked.ok ? checkCertificateSpec(checked.value) : checked.errors;
    if (problems.length > 0) {
      return this.writeStatus(
        cert,
        {},
        { ready: false, reason: "InvalidSpec", message: problems.join("; ") },
      );
    }
    const spec = checked.value;
    let issuerSecret: V1Secret | undefined;
    if (spec.issuerRef) {
      const found = this.issuerSecret(spec.issuerRef, ns);
      if ("ready" in found) return this.writeStatus(cert, {}, found);
      issuerSecret = found;
    }
    const secret = this.secrets.get(`${ns}/${spec.secretName}`);
    const now = this.now();
    const decision = decideIssuance({ spec, secret, issuerSecret, parse: parseCertificate, now });
    if (decision.issue) {
      request.logger.info({ reason: decision.reason }, "issuing certificate");
      const data = issueSecretData(spec, issuerSecret ? issuerMaterial(issuerSecret) : undefined, now);
      const written = await this.writeSecret(cert, data, issuerSecret);
      if (!written) {
        return this.writeStatus(
          cert,
          {},
          {
            ready: false,
            reason: "SecretConflict",
            message: `Secret ${spec.secretName} exists and is not managed by Trellis; choose another secretName or delete it`,
          },
        );
      }
      const info = data.certificate;
      await this.manager.events.event(
        cert,
        "Normal",
        "Issued",
        `Issued certificate ${info.serialHex} (${decision.reason}: ${decision.message}), valid until ${info.notAfter.toISOString()}`,
      );
      return; // the Secret's watch event brings the next reconcile, which writes status
    }
    const der = secret ? certificateOf(secret) : undefined;
    if (!der) throw new Error(`Secret ${spec.secretName} lost its certificate`);
    const info = parseCertificate(der);
    const status: CertificateStatus = {
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      renewalTime: decision.renewalTime.toISOString(),
      fingerprint: info.fingerprint,
      serialNumber: info.serialHex,
      issuerFingerprint: secret?.metadata?.annotations?.[SECRET_ANNOTATIONS.issuerFingerprint],
      revision: Number(secret?.metadata?.annotations?.[SECRET_ANNOTATIONS.revision] ?? 1),
    };
    await this.writeStatus(cert, status, {
      ready: true,
      reason: "Issued",
      message: `certificate is up to date and valid until ${status.notAfter}`,
    });
    return {
      requeueAfterMs: Math.min(MAX_REQUEUE_MS, decision.renewalTime.getTime() - now.getTime() + 1000),
    };
  }

  private checkIssuer(name: string, ns: string, issuer: Certificate | undefined): Verdict | undefined {
    if (!issuer) {
      return {
        ready: false,
        reason: "IssuerNotFound",
        message: `issuerRef names Certificate ${name}, which does not exist in namespace ${ns}`,
      };
    }
    if (issuer.spec.type === "Serving") {
      return {
        ready: false,
        reason: "IssuerInvalid",
        message: `issuerRef names ${name}, a Serving certificate, which cannot sign`,
      };
    }
    return undefined;
  }

  /** Creates or updates the Secret; false when a Secret of that name exists that Trellis does not manage. */
  private async writeSecret(
    cert: Certificate,
    data: ReturnType<typeof issueSecretData>,
    issuerSecret: V1Secret | undefined,
  ): Promise<boolean> {
    const ns = cert.metadata.namespace ?? "default";
    const existing = this.secrets.get(`${ns}/${cert.spec.secretName}`);
    const revision = Number(existing?.metadata?.annotations?.[SECRET_ANNOTATIONS.revision] ?? 0) + 1;
    const issuerDer = issuerSecret ? certificateOf(issuerSecret) : undefined;
    const secret: V1Secret & KubernetesObject = {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: {
        name: cert.spec.secretName,
        namespace: ns,
        labels: { [LABELS.managedBy]: MANAGED_BY, [CERTIFICATE_LABEL]: cert.metadata.name ?? "" },
        annotations: {
          [SECRET_ANNOTATIONS.specHash]: specHash(cert.spec),
          [SECRET_ANNOTATIONS.certificateName]: cert.metadata.name ?? "",
          ...(issuerDer
            ? { [SECRET_ANNOTATIONS.issuerFingerprint]: parseCertificate(issuerDer).fingerprint }
            : {}),
          [SECRET_ANNOTATIONS.revision]: String(revision),
        },
        ownerReferences: [
          {
            apiVersion: API_VERSION,
            kind: "Certificate",
            name: cert.metadata.name ?? "",
            uid: cert.metadata.uid ?? "",
            controller: true,
          },
        ],
      },
      data: {
        "tls.crt": Buffer.from(data["tls.crt"]).toString("base64"),
        "tls.key": Buffer.from(data["tls.key"]).toString("base64"),
        "ca.crt": Buffer.from(data["ca.crt"]).toString("base64"),
      },
    };
    if (existing) {
      await this.manager.writer.apply(secret);
      return true;
    }
    try {
      await this.manager.client.create(RESOURCES.ownedSecret, secret);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private async writeStatus(
    cert: Certificate,
    facts: CertificateStatus,
    verdict: Verdict,
  ): Promise<ReconcileResult> {
    const generation = cert.metadata.generation ?? 0;
    const conditions = setCondition(
      cert.status?.conditions,
      {
        type: "Ready",
        status: verdict.ready ? "True" : "False",
        reason: verdict.reason,
        message: verdict.message,
        observedGeneration: generation,
      },
      this.now(),
    );
    const status: CertificateStatus = {
      ...(verdict.ready ? facts : keepFacts(cert.status)),
      observedGeneration: generation,
      conditions,
    };
    if (!(await writeStatusIfChanged(this.manager.writer, cert, status))) return;
    if (
      !verdict.ready &&
      cert.status?.conditions?.find((c) => c.type === "Ready")?.reason !== verdict.reason
    ) {
      await this.manager.events.event(cert, "Warning", verdict.reason, verdict.message);
    }
    return;
  }
}

/** While not ready, status keeps the facts of the certificate still in the Secret. */
function keepFacts(status: CertificateStatus | undefined): CertificateStatus {
  if (!status) return {};
  const { conditions: _c, observedGeneration: _g, ...facts } = status;
  return facts;
}
