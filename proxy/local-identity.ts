/**
 * This proxy's own identity: a private key generated in-process (it never leaves it), a leaf
 * obtained from the identity service and renewed at a fraction of its lifetime, and the TLS
 * context built from leaf + key + trust bundle. New connections pick up a new context at once;
 * existing connections are not touched, so renewal and bundle rotation drop nothing.
 * After each leaf and each bundle it reports what it trusts (trust-reporter.ts).
 *
 * A leaf is never used past its notAfter: from that instant no new mTLS connection is opened
 * with it (the listener refuses inbound ones, tls-session-bounds.ts), while connections already
 * open carry on; failed renewals retry faster as expiry nears (renewal-schedule.ts).
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
import { renewAtMs, renewalRetryDelayMs } from "./renewal-schedule.ts";
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
  leafExpired: boolean;
  renewalFailures: number;
  lastRenewalError: string | undefined;
  nextRenewalAt: string | undefined;
}

/** Refusals a retry cannot fix are not retried (the request itself is wrong, or not served). */
function retryableReportError(err: unknown): boolean {
  if (!(err instanceof IdentityRefusal)) return true;
  return err.status >= 500 || err.status === 408 || err.status === 429;
}

/** setTimeout's limit; a longer wait is re-armed when it fires. */
const maxTimerMs = 2 ** 31 - 1;

export class LocalIdentity implements ClientTls {
  generation = 0;
  private readonly keyPair = generateKeyPair();
  private readonly keyPem = privateKeyToPem(this.keyPair.privateKey);
  private leaf: Leaf | undefined;
  private context: SecureContext | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextRenewalAt: number | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private expired = false;
  private failures = 0;
  private failingSince: number | undefined;
  private lastError: string | undefined;
  private renewals = 0;
  private stopped = false;
  private readonly readyWaiters: (() => void)[] = [];
  private readonly leafListeners: (() => void)[] = [];
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
    metrics.identityLeafTimeLeft.sample = () =>
      this.leaf ? Math.round((this.leaf.notAfter.getTime() - Date.now()) / 100) / 10 : undefined;
  }

  /** A leaf has been installed (it may have expired since: see degradation()). */
  get ready(): boolean {
    return this.context !== undefined;
  }

  /** What is wrong with this identity now, if anything, in a sentence for `/ready`. */
  degradation(): string | undefined {
    const failing = this.failures > 0 ? `; renewal failing ${this.failures} time(s): ${this.lastError}` : "";
    if (this.expired) return `leaf expired at ${this.leaf?.notAfter.toISOString()}${failing}`;
    return failing ? `leaf valid until ${this.leaf?.notAfter.toISOString() ?? "-"}${failing}` : undefined;
  }

  /** Calls `listener` after every leaf installed. */
  onLeaf(listener: () => void): void {
    this.leafListeners.push(listener);
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
    clearTimeout(this.expiryTimer);
    this.reporter.stop();
  }

  /** The context for new outbound mTLS connections; none before the first leaf or once it expired. */
  clientContext(): SecureContext | undefined {
    if (this.expired) {
      this.metrics.expiredCertificates.inc(["outbound", "local"]);
      return undefined;
    }
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
      leafExpired: this.expired,
      renewalFailures: this.failures,
      lastRenewalError: this.lastError,
      nextRenewalAt:
        this.nextRenewalAt === undefined ? undefined : new Date(this.nextRenewalAt).toISOString(),
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
    this.nextRenewalAt = undefined;
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
    } catch (err) {
      this.renewalFailed((err as Error).message);
      return;
    }
    this.renewals++;
    this.metrics.identityRenewals.inc(["ok"]);
    this.renewalRecovered();
    this.schedule(renewAtMs(this.leafTimes()!, this.cfg.renewFraction) - Date.now());
  }

  private renewalFailed(message: string): void {
    this.failures++;
    this.lastError = message;
    this.metrics.identityRenewals.inc(["error"]);
    this.metrics.identityRefreshFailures.set([], this.failures);
    const delay = renewalRetryDelayMs(this.leafTimes(), this.failures, Date.now());
    if (this.failingSince === undefined) {
      this.failingSince = Date.now();
      this.log.warn(
        { err: message, leafNotAfter: this.leaf?.notAfter.toISOString(), retryInMs: delay },
        "identity renewal failing; retrying with back-off",
      );
    } else {
      this.log.debug?.(
        { err: message, failures: this.failures, retryInMs: delay },
        "identity renewal retry failed",
      );
    }
    this.schedule(delay);
  }

  private renewalRecovered(): void {
    if (this.failingSince !== undefined) {
      this.log.warn(
        { failures: this.failures, failingSeconds: Math.round((Date.now() - this.failingSince) / 1000) },
        "identity renewal recovered",
      );
    }
    this.failures = 0;
    this.failingSince = undefined;
    this.lastError = undefined;
    this.metrics.identityRefreshFailures.set([], 0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const delay = Math.min(maxTimerMs, Math.max(100, delayMs));
    this.nextRenewalAt = Date.now() + delay;
    this.timer = setTimeout(() => void this.refresh(), delay);
    this.timer.unref();
  }

  private leafTimes() {
    const leaf = this.leaf;
    if (!leaf) return undefined;
    return {
      notBefore: leaf.notBefore.getTime(),
      notAfter: leaf.notAfter.getTime(),
      receivedAt: leaf.receivedAt,
    };
  }

  /** Arms the expiry of the current leaf; from then on it opens no new connection. */
  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const leaf = this.leaf;
    if (!leaf) return;
    const left = leaf.notAfter.getTime() - Date.now();
    if (left > 0) {
      this.expiryTimer = setTimeout(() => this.armExpiry(), Math.min(maxTimerMs, left + 1));
      this.expiryTimer.unref();
      return;
    }
    if (this.expired) return;
    this.expired = true;
    this.log.warn(
      { notAfter: leaf.notAfter.toISOString(), renewalFailures: this.failures, lastError: this.lastError },
      "leaf expired; no new mTLS connections until a renewal succeeds (open ones carry on)",
    );
    // A retry scheduled for later than the no-leaf cap is brought forward.
    if (this.failures > 0) this.schedule(renewalRetryDelayMs(this.leafTimes(), this.failures, Date.now()));
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
    const wasExpired = this.expired;
    this.expired = false;
    this.armExpiry();
    const msg = wasExpired ? "leaf installed; the expired one is replaced" : "leaf installed";
    const fields = { spiffeId: parsed.spiffeId, notAfter: this.leaf.notAfter.toISOString() };
    if (wasExpired) this.log.warn(fields, msg);
    else this.log.info(fields, msg);
    this.rebuildContext();
    this.reportTrust();
    for (const l of this.leafListeners) l();
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
