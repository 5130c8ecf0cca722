// The destination service's TLS material, kept current from files: the serving certificate
// and key (a Secret volume, renewed by the operator) and the trust bundle client proxies are
// verified against (a ConfigMap volume, changed by an anchor rotation). Kubernetes updates
// both by swapping a symlink, which file watchers miss, so the files are polled. A change is
// checked by building a secure context first; a half-written or mismatched pair is refused
// and the last good material stays in use. Owns loading and validation; does not own the
// listener (destination-server.ts installs what it produces with setSecureContext, so open
// connections and their streams keep the context they started with).
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import type { Logger } from "pino";
import type { Counter, Gauge } from "../../kube/index.ts";

export interface ServingTlsFiles {
  certFile: string;
  keyFile: string;
  trustBundleFile: string;
}

export interface ServingTlsMetrics {
  reloads: Counter;
  expiry: Gauge;
}

/** What tls.Server#setSecureContext takes: our chain and key, and the anchors for clients. */
export interface ServingMaterial {
  cert: string;
  key: string;
  ca: string;
  minVersion: tls.SecureVersion;
}

/** Reads and checks the three files; throws with a reason a person can act on. */
export function loadServingMaterial(files: ServingTlsFiles): ServingMaterial {
  const material: ServingMaterial = {
    cert: readFileSync(files.certFile, "utf8"),
    key: readFileSync(files.keyFile, "utf8"),
    ca: readFileSync(files.trustBundleFile, "utf8"),
    minVersion: "TLSv1.2",
  };
  if (!material.ca.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error(`${files.trustBundleFile} holds no PEM certificate`);
  }
  // Throws on a key that does not match the certificate, or unparsable PEM.
  tls.createSecureContext(material);
  return material;
}

export class ServingTls {
  private current: ServingMaterial;
  private fingerprint: string;
  private refused = "";
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly files: ServingTlsFiles,
    private readonly metrics: ServingTlsMetrics,
    private readonly logger: Logger,
  ) {
    // The first load must succeed: there is nothing older to fall back to.
    this.current = loadServingMaterial(files);
    this.fingerprint = fingerprintOf(this.current);
    this.recordExpiry();
  }

  get material(): ServingMaterial {
    return this.current;
  }

  /** Polls the files every `intervalMs`; `install` gets each new, valid material. */
  watch(intervalMs: number, install: (m: ServingMaterial) => void): void {
    this.timer = setInterval(() => this.poll(install), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private poll(install: (m: ServingMaterial) => void): void {
    let next: ServingMaterial;
    try {
      next = loadServingMaterial(this.files);
    } catch (err) {
      // Mid-rotation the key may be newer than the certificate for a moment: say so once per
      // distinct failure, keep serving with what we have, and look again at the next poll.
      const reason = (err as Error).message;
      if (reason !== this.refused) {
        this.refused = reason;
        this.metrics.reloads.inc({ result: "invalid" });
        this.logger.warn({ err: reason }, "serving certificate or trust bundle not reloaded");
      }
      return;
    }
    this.refused = "";
    const fingerprint = fingerprintOf(next);
    if (fingerprint === this.fingerprint) return;
    install(next);
    this.current = next;
    this.fingerprint = fingerprint;
    this.metrics.reloads.inc({ result: "ok" });
    this.recordExpiry();
    this.logger.info(
      { notAfter: this.notAfter()?.toISOString() },
      "serving certificate and trust bundle reloaded",
    );
  }

  private notAfter(): Date | undefined {
    try {
      return new Date(new X509Certificate(this.current.cert).validTo);
    } catch {
      return undefined;
    }
  }

  private recordExpiry(): void {
    const notAfter = this.notAfter();
    if (notAfter) this.metrics.expiry.set({}, Math.floor(notAfter.getTime() / 1000));
  }
}

/** One digest over the three files: equal digests mean nothing changed. */
function fingerprintOf(m: ServingMaterial): string {
  return createHash("sha256")
    .update(m.cert)
    .update("\0")
    .update(m.key)
    .update("\0")
    .update(m.ca)
    .digest("hex");
}
