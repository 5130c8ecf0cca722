/**
 * This proxy's own identity: a private key generated in-process (it never leaves it), a leaf
 * obtained from the identity service and renewed at a fraction of its lifetime, and the TLS
 * context built from leaf + key + trust bundle. New connections pick up a new context at once;
 * existing connections are not touched, so renewal and bundle rotation drop nothing.
 * After each leaf and each bundle it reports what it trusts (trust-reporter.ts).
 *
 * Owns: key, leaf, renewal schedule, the secure context and `/identity` status. Does not own
 * the wire exchange (identity-client.ts), bundle loading (trust-bundle.ts) or report retries.
 */
import { X509Certificate } from "node:crypto";
import tls, { type PeerCertificate, type SecureContext } from "node:tls";
import {
  createCsr,
  generateKeyPair,
  parseCertificate,
  pemBlocks,
  privateKeyToPem,
  verifyChain,
} from "../pki/index.ts";
import type { ProxyConfig } from "./config.ts";
import { certify, IdentityRefusal, reportTrust } from "./identity-client.ts";
import { spiffeVerifier } from "./peer-certificate.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { BundleLog, TrustBundle } from "./trust-bundle.ts";
import { type ReportStatus, TrustReporter, type TrustState } from "./trust-reporter.ts";
import type { ClientTls } from "./upstream.ts";

type IdentityConfig = NonNullable<ProxyConfig["identity"]>;

interface Leaf {
  chainPem: string;
  spiffeId: string | undefined;
  notBefore: Date;
  notAfter: Date;
  receivedAt: number;
  fingerprint: string;
  /** The bundle anchor the chain verified to when installed. */
  anchorFingerprint: string;
}

export interface IdentityStatus extends ReportStatus {
  spiffeId: string | undefined;
  leafNotAfter: string | undefined;
  leafFingerprint: string | undefined;
  leafAnchorFingerprint: string | undefined;
  trustBundleFingerprints: string[];
  renewals: number;
}

/** Refusals a retry cannot fix are not retried (the request itself is wrong, or not served). */
function retryableReportError(err: unknown): boolean {
  if (!(err instanceof IdentityRefusal)) return true;
  return err.status >= 500 || err.status === 408 || err.status === 429;
}

const maxBackoffMs = 30_000;

export class LocalIdentity implements ClientTls {
  generation = 0;
  private readonly keyPair = generateKeyPair();
  private readonly keyPem = privateKeyToPem(this.keyPair.privateKey);
  private leaf: Leaf | undefined;
  private context: SecureContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private renewals = 0;
  private stopped = false;
  private readonly readyWaiters: (() => void)[] = [];
  private readonly reporter: TrustReporter;

  constructor(
    private readonly cfg: IdentityConfig,
    private readonly bundle: TrustBundle,
    private readonly metrics: ProxyMetrics,
    private readonly log: BundleLog,
    private readonly timeoutMs: number,
  ) {
    this.reporter = new TrustReporter(
      (state) =>
        reportTrust({
          url: cfg.url,
          serverIdentity: cfg.serverIdentity,
          tokenPath: cfg.tokenPath,
          ...state,
          security: { caPem: () => this.bundle.pem },
          timeoutMs,
        }),
      log,
      retryableReportError,
    );
    bundle.onChange(() => {
      this.rebuildContext();
      this.reportTrust();
    });
  }

  get ready(): boolean {
    return this.context !== undefined;
  }

  /** Resolves once a leaf is installed (or never, if the identity service never answers). */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  start(): void {
    void this.refresh();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.reporter.stop();
  }

  clientContext(): SecureContext | undefined {
    return this.context;
  }

  verifierFor(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
    return spiffeVerifier(expected);
  }

  status(): IdentityStatus {
    return {
      spiffeId: this.leaf?.spiffeId,
      leafNotAfter: this.leaf?.notAfter.toISOString(),
      leafFingerprint: this.leaf?.fingerprint,
      leafAnchorFingerprint: this.trustState().leafAnchorFingerprint,
      trustBundleFingerprints: this.bundle.fingerprints,
      renewals: this.renewals,
      ...this.reporter.status(),
    };
  }

  /** What this proxy trusts now; a leaf whose anchor left the bundle chains to nothing trusted. */
  private trustState(): TrustState {
    const trusted = this.bundle.fingerprints;
    const anchor = this.leaf?.anchorFingerprint;
    return {
      trustBundleFingerprints: trusted,
      leafAnchorFingerprint: anchor !== undefined && trusted.includes(anchor) ? anchor : undefined,
    };
  }

  private reportTrust(): void {
    if (this.bundle.fingerprints.length > 0) this.reporter.report(this.trustState());
  }

  private async refresh(): Promise<void> {
    if (this.stopped) return;
    try {
      const csr = createCsr({ keyPair: this.keyPair, spiffeId: this.cfg.spiffeId });
      const res = await certify({
        url: this.cfg.url,
        serverIdentity: this.cfg.serverIdentity,
        tokenPath: this.cfg.tokenPath,
        csrPem: csr.pem,
        security: { caPem: () => this.bundle.pem },
        timeoutMs: this.timeoutMs,
      });
      this.install(res.certificateChainPem);
      this.failures = 0;
      this.renewals++;
      this.metrics.identityRenewals.inc(["ok"]);
      this.schedule(this.renewDelayMs());
    } catch (err) {
      this.failures++;
      this.metrics.identityRenewals.inc(["error"]);
      const delay = Math.min(maxBackoffMs, 250 * 2 ** Math.min(this.failures, 8));
      this.log.warn({ err: (err as Error).message, retryInMs: delay }, "identity refresh failed");
      this.schedule(delay);
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), delayMs);
    this.timer.unref();
  }

  /**
   * Renew at `renewFraction` of the lifetime, with a little jitter so a fleet spreads out.
   * The lifetime counts from receipt when notBefore was backdated for clock skew.
   */
  private renewDelayMs(): number {
    const leaf = this.leaf!;
    const start = Math.max(leaf.notBefore.getTime(), leaf.receivedAt);
    const lifetime = leaf.notAfter.getTime() - start;
    const jitter = 1 - Math.random() * 0.05;
    const at = start + lifetime * this.cfg.renewFraction * jitter;
    return Math.max(100, at - Date.now());
  }

  /** Checks the chain against the bundle and our key and identity, then swaps the context. */
  private install(chainPem: string): void {
    const chain = pemBlocks(chainPem, "CERTIFICATE");
    const leafDer = chain[0];
    if (!leafDer) throw new Error("identity service returned an empty chain");
    const verdict = verifyChain(chain, this.bundle.anchors);
    if (!verdict.ok)
      throw new Error(`issued chain does not verify against the trust bundle: ${verdict.reason}`);
    if (!new X509Certificate(leafDer).publicKey.equals(this.keyPair.publicKey)) {
      throw new Error("issued leaf does not carry this proxy's public key");
    }
    const parsed = parseCertificate(leafDer);
    if (this.cfg.spiffeId !== undefined && parsed.spiffeId !== this.cfg.spiffeId) {
      throw new Error(`issued leaf names ${parsed.spiffeId ?? "no identity"}, expected ${this.cfg.spiffeId}`);
    }
    this.leaf = {
      chainPem,
      spiffeId: parsed.spiffeId,
      notBefore: new Date(parsed.notBefore),
      notAfter: new Date(parsed.notAfter),
      receivedAt: Date.now(),
      fingerprint: parsed.fingerprint,
      anchorFingerprint: verdict.anchorFingerprint,
    };
    this.metrics.identityLeafExpiry.set([], Math.floor(this.leaf.notAfter.getTime() / 1000));
    this.log.info(
      { spiffeId: parsed.spiffeId, notAfter: this.leaf.notAfter.toISOString() },
      "leaf installed",
    );
    this.rebuildContext();
    this.reportTrust();
  }

  /** Options for tls.Server#setSecureContext (the inbound side swaps contexts through it). */
  secureOptions(): tls.SecureContextOptions | undefined {
    if (!this.leaf || !this.bundle.pem) return undefined;
    return { key: this.keyPem, cert: this.leaf.chainPem, ca: this.bundle.pem, minVersion: "TLSv1.3" };
  }

  private rebuildContext(): void {
    const options = this.secureOptions();
    if (!options) return;
    this.context = tls.createSecureContext(options);
    this.generation++;
    for (const w of this.readyWaiters.splice(0)) w();
  }
}
