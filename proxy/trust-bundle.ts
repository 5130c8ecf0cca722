/**
 * The trust bundle file: loaded at start, polled for changes (a Kubernetes ConfigMap update
 * swaps a symlink, which file watchers miss), and parsed through pki/. An anchor rotation is
 * just a new file content; no restart.
 *
 * Owns: the anchors currently trusted and their fingerprints. Does not build TLS contexts
 * (local-identity.ts).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { fingerprint, pemBlocks, toPem } from "../pki/index.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";

export interface BundleLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export class TrustBundle {
  pem: string | undefined;
  anchors: Buffer[] = [];
  fingerprints: string[] = [];
  private contentHash = "";
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: (() => void)[] = [];

  constructor(
    private readonly path: string,
    private readonly pollMs: number,
    private readonly metrics: ProxyMetrics,
    private readonly log: BundleLog,
  ) {}

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** Loads once (resolving false if the file is missing or holds no anchor) and starts polling. */
  async start(): Promise<boolean> {
    const ok = await this.reload();
    this.timer = setInterval(() => void this.reload(), this.pollMs);
    this.timer.unref();
    return ok;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Re-reads the file; applies it when it changed and holds at least one certificate. */
  async reload(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      this.metrics.trustBundleReloads.inc(["unreadable"]);
      this.log.warn(
        { path: this.path, err: (err as Error).message },
        "trust bundle unreadable; keeping current",
      );
      return this.anchors.length > 0;
    }
    const hash = createHash("sha256").update(text).digest("hex");
    if (hash === this.contentHash) return this.anchors.length > 0;
    let anchors: Buffer[];
    try {
      anchors = pemBlocks(text, "CERTIFICATE");
    } catch {
      anchors = [];
    }
    if (anchors.length === 0) {
      this.metrics.trustBundleReloads.inc(["invalid"]);
      this.log.warn({ path: this.path }, "trust bundle holds no certificate; keeping current");
      return this.anchors.length > 0;
    }
    this.contentHash = hash;
    this.anchors = anchors;
    this.pem = anchors.map((der) => toPem("CERTIFICATE", der)).join("");
    this.fingerprints = anchors.map((der) => fingerprint(der));
    this.metrics.trustBundleReloads.inc(["applied"]);
    this.metrics.trustBundleAnchors.set([], anchors.length);
    this.log.info({ path: this.path, fingerprints: this.fingerprints }, "trust bundle loaded");
    for (const l of this.listeners) l();
    return true;
  }
}
