/**
 * The trust bundle file: loaded at start, polled for changes (a Kubernetes ConfigMap update
 * swaps a symlink, which file watchers miss), and checked block by block (trust-anchors.ts)
 * before anything uses it. An anchor rotation is just a new file content; no restart.
 * A block that is not a CA certificate is dropped with one warning naming it; a file with no
 * usable anchor, an unreadable or a missing file is refused and the last good anchors stay in
 * use. Each state is logged once when it starts and once when it ends, not on every poll.
 *
 * Owns: the anchors currently trusted, their fingerprints and the file's health. Does not
 * build TLS contexts (local-identity.ts).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { toPem } from "../pki/index.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import { type Anchor, parseTrustBundle } from "./trust-anchors.ts";

export interface BundleLog {
  debug?(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

type FileProblem = { kind: "unreadable" | "no_usable_anchor"; since: number; detail: string };

export class TrustBundle {
  pem: string | undefined;
  anchors: Buffer[] = [];
  fingerprints: string[] = [];
  /** Blocks of the file in use that were dropped, with their reasons. */
  rejectedBlocks: string[] = [];
  private problem: FileProblem | undefined;
  /** Hash of the file content in use, and of the last content judged (so each is judged once). */
  private appliedHash = "";
  private judgedHash = "";
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

  /** What is wrong with the file now, if anything (the last good anchors are in use meanwhile). */
  degradation(): string | undefined {
    const p = this.problem;
    if (p)
      return `trust bundle ${p.kind === "unreadable" ? "unreadable" : "has no usable anchor"} since ${new Date(p.since).toISOString()} (${p.detail}); using the last good one`;
    if (this.rejectedBlocks.length > 0) return `trust bundle: ${this.rejectedBlocks.length} block(s) dropped`;
    return undefined;
  }

  /** Re-reads the file; applies it when it changed and holds at least one usable anchor. */
  async reload(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      this.judgedHash = "";
      this.refuse("unreadable", (err as Error).message);
      return this.anchors.length > 0;
    }
    const hash = createHash("sha256").update(text).digest("hex");
    if (hash === this.appliedHash) {
      this.judgedHash = hash;
      this.resolveProblem("the file holds the anchors in use again");
      return true;
    }
    if (hash === this.judgedHash) return this.anchors.length > 0;
    this.judgedHash = hash;
    const parsed = parseTrustBundle(text);
    const rejected = parsed.rejected.map((r) => `block ${r.block}: ${r.reason}`);
    for (const r of rejected) this.log.warn({ path: this.path, problem: r }, "trust bundle block dropped");
    if (parsed.anchors.length === 0) {
      this.refuse("no_usable_anchor", rejected.length > 0 ? rejected.join("; ") : "no CERTIFICATE block");
      return this.anchors.length > 0;
    }
    this.appliedHash = hash;
    this.apply(parsed.anchors, rejected);
    return true;
  }

  private apply(anchors: Anchor[], rejected: string[]): void {
    this.anchors = anchors.map((a) => a.der);
    this.pem = anchors.map((a) => toPem("CERTIFICATE", a.der)).join("");
    this.fingerprints = anchors.map((a) => a.fingerprint);
    this.rejectedBlocks = rejected;
    this.metrics.trustBundleReloads.inc(["applied"]);
    this.metrics.trustBundleAnchors.set([], anchors.length);
    this.metrics.trustBundleRejectedBlocks.set([], rejected.length);
    this.resolveProblem("a new bundle was loaded");
    this.log.info(
      { path: this.path, fingerprints: this.fingerprints, droppedBlocks: rejected.length },
      "trust bundle loaded",
    );
    for (const l of this.listeners) l();
  }

  /** Starts (or keeps) a problem state: logged and counted once per state, not per poll. */
  private refuse(kind: FileProblem["kind"], detail: string): void {
    if (this.problem?.kind === kind && this.problem.detail === detail) return;
    this.problem = { kind, since: this.problem?.since ?? Date.now(), detail };
    this.metrics.trustBundleReloads.inc([kind === "unreadable" ? "unreadable" : "invalid"]);
    this.log.warn(
      { path: this.path, problem: detail, keptAnchors: this.fingerprints.length },
      kind === "unreadable"
        ? "trust bundle unreadable; keeping the last good one"
        : "trust bundle has no usable anchor; refused, keeping the last good one",
    );
  }

  private resolveProblem(how: string): void {
    const p = this.problem;
    if (!p) return;
    this.problem = undefined;
    this.log.warn(
      { path: this.path, problemSeconds: Math.round((Date.now() - p.since) / 1000), how },
      "trust bundle problem ended",
    );
  }
}
