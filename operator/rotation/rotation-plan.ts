// Trust-anchor rotation as a resumable state machine, decided purely from the Mesh status and
// what the cluster shows. Phases (status.trustAnchor.rotationPhase):
//   Stable           one anchor; rotation starts when it nears expiry or on request
//   AnchorCreated    the next anchor's Certificate exists; waiting for it to be issued
//   BundlePublished  proxies are given old + new anchors; waiting until every proxy trusts the new one
//   IssuerSwitched   the issuer is re-signed by the new anchor; waiting until no live leaf chains
//                    to the old one (every proxy reports a new leaf, or the longest leaf lifetime passed)
//   OldAnchorRemoved the old anchor leaves the bundle; then Stable again
// Each decision names the anchors to keep, the one that signs the issuer and the ones published,
// so a restarted operator continues from status alone and never drops an anchor still in use.
import { type MeshSpec, type MeshStatus, parseDuration } from "../../api/index.ts";

export type TrustAnchorStatus = NonNullable<MeshStatus["trustAnchor"]>;

export interface AnchorFacts {
  ready: boolean;
  fingerprint?: string | undefined;
  notAfter?: Date | undefined;
}

/** What one proxy reports: the anchors it trusts and the anchor its own leaf chains to. */
export interface ProxyReport {
  trusted: string[];
  leafAnchor: string | undefined;
}

export interface RotationInput {
  spec: MeshSpec;
  status: TrustAnchorStatus | undefined;
  /** Value of the trellis.dev/rotate-trust-anchor annotation, if any. */
  rotateRequest: string | undefined;
  anchor: (generation: number) => AnchorFacts;
  /** Fingerprint of the anchor the issuer's current certificate chains to. */
  issuerAnchor: string | undefined;
  proxies: ProxyReport[];
  now: Date;
}

export interface RotationDecision {
  /** Anchor generations whose Certificates must exist. */
  anchorGenerations: number[];
  /** The anchor that signs the issuer. */
  signingGeneration: number;
  /** Anchors in the trust bundle given to proxies and the webhook. */
  bundleGenerations: number[];
  status: TrustAnchorStatus;
  events: Array<{ type: "Normal" | "Warning"; reason: string; message: string }>;
  requeueAfterMs?: number;
}

export function planRotation(input: RotationInput): RotationDecision {
  const { spec, now } = input;
  const s: TrustAnchorStatus = input.status ?? { rotationPhase: "Stable", generation: 1 };
  const g = s.generation ?? 1;
  const n = s.nextGeneration ?? g + 1;
  const current = input.anchor(g);
  const since = (
    phase: TrustAnchorStatus["rotationPhase"],
    extra: Partial<TrustAnchorStatus> = {},
  ): TrustAnchorStatus => ({
    ...s,
    ...extra,
    rotationPhase: phase,
    phaseSince: now.toISOString(),
  });
  const progress = (fp: string | undefined, test: (r: ProxyReport) => boolean) => ({
    proxiesDone: fp ? input.proxies.filter(test).length : 0,
    proxiesTotal: input.proxies.length,
  });
  const facts = { fingerprint: current.fingerprint, notAfter: current.notAfter?.toISOString() };
  switch (s.rotationPhase) {
    case "Stable": {
      const reason = rotationReason(input, current, s);
      const stable: TrustAnchorStatus = {
        ...s,
        ...facts,
        generation: g,
        rotationPhase: "Stable",
        message: "one anchor in use",
      };
      if (!reason || !current.ready) {
        const wait = msUntilRotation(input, current);
        return decide([g], g, [g], stable, [], wait === undefined ? undefined : Math.max(1000, wait));
      }
      const next = since("AnchorCreated", {
        ...facts,
        generation: g,
        nextGeneration: g + 1,
        lastRotationRequest: input.rotateRequest ?? s.lastRotationRequest,
        message: `creating anchor ${g + 1}`,
      });
      return decide([g, g + 1], g, [g], next, [
        { type: "Normal", reason: "RotationStarted", message: `Trust anchor rotation started: ${reason}` },
      ]);
    }
    case "AnchorCreated": {
      const next = input.anchor(n);
      if (!next.ready || !next.fingerprint) return decide([g, n], g, [g], { ...s, ...facts }, [], 2000);
      const published = since("BundlePublished", {
        ...facts,
        nextFingerprint: next.fingerprint,
        message: "trust bundle holds the old and the new anchor",
      });
      return decide(
        [g, n],
        g,
        [g, n],
        published,
        [
          {
            type: "Normal",
            reason: "BundlePublished",
            message: `Trust bundle now holds anchors ${g} and ${n}`,
          },
        ],
        1000,
      );
    }
    case "BundlePublished": {
      const fp = s.nextFingerprint;
      const p = progress(fp, (r) => fp !== undefined && r.trusted.includes(fp));
      if (p.proxiesDone < p.proxiesTotal) {
        return decide(
          [g, n],
          g,
          [g, n],
          {
            ...s,
            ...facts,
            ...p,
            message: `${p.proxiesDone}/${p.proxiesTotal} proxies trust the new anchor`,
          },
          [],
          2000,
        );
      }
      const switched = since("IssuerSwitched", {
        ...facts,
        ...p,
        message: "issuer re-signed by the new anchor",
      });
      return decide(
        [g, n],
        n,
        [g, n],
        switched,
        [
          {
            type: "Normal",
            reason: "IssuerSwitched",
            message: `${p.proxiesTotal === 1 ? "The 1 proxy trusts" : `All ${p.proxiesTotal} proxies trust`} anchor ${n}; the issuer is now signed by it`,
          },
        ],
        1000,
      );
    }
    case "IssuerSwitched": {
      const fp = s.nextFingerprint;
      const p = progress(fp, (r) => r.leafAnchor === fp);
      const issuerMoved = fp !== undefined && input.issuerAnchor === fp;
      const leavesExpired =
        now.getTime() - Date.parse(s.phaseSince ?? now.toISOString()) >=
        parseDuration(spec.identity.leafLifetime);
      if (!issuerMoved || (p.proxiesDone < p.proxiesTotal && !leavesExpired)) {
        const message = issuerMoved
          ? `${p.proxiesDone}/${p.proxiesTotal} proxies hold a leaf from the new anchor`
          : "waiting for the issuer to be re-issued";
        return decide([g, n], n, [g, n], { ...s, ...facts, ...p, message }, [], 2000);
      }
      const removed = since("OldAnchorRemoved", {
        ...p,
        message: `anchor ${g} removed from the trust bundle`,
      });
      return decide(
        [n],
        n,
        [n],
        removed,
        [
          {
            type: "Normal",
            reason: "OldAnchorRemoved",
            message: `No live leaf chains to anchor ${g}; it left the trust bundle`,
          },
        ],
        1000,
      );
    }
    case "OldAnchorRemoved": {
      const done = input.anchor(n);
      const stable: TrustAnchorStatus = {
        rotationPhase: "Stable",
        generation: n,
        fingerprint: done.fingerprint,
        notAfter: done.notAfter?.toISOString(),
        lastRotationRequest: s.lastRotationRequest,
        phaseSince: now.toISOString(),
        message: "one anchor in use",
      };
      return decide([n], n, [n], stable, [
        {
          type: "Normal",
          reason: "RotationComplete",
          message: `Trust anchor rotation complete: anchor ${n} (${done.fingerprint?.slice(0, 16)}…) is the only anchor`,
        },
      ]);
    }
  }
}

function decide(
  anchorGenerations: number[],
  signingGeneration: number,
  bundleGenerations: number[],
  status: TrustAnchorStatus,
  events: RotationDecision["events"],
  requeueAfterMs?: number,
): RotationDecision {
  return {
    anchorGenerations,
    signingGeneration,
    bundleGenerations,
    status,
    events,
    ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }),
  };
}

function rotationReason(
  input: RotationInput,
  current: AnchorFacts,
  s: TrustAnchorStatus,
): string | undefined {
  if (input.spec.identity.trustAnchor.source !== "Generated") return undefined;
  if (input.rotateRequest && input.rotateRequest !== s.lastRotationRequest)
    return `requested (trellis.dev/rotate-trust-anchor=${input.rotateRequest})`;
  const ms = msUntilRotation(input, current);
  if (ms !== undefined && ms <= 0)
    return `anchor expires at ${current.notAfter?.toISOString()}, within ${input.spec.identity.rotation.before}`;
  return undefined;
}

/** Time until automatic rotation is due (undefined when it is off or unknown). */
function msUntilRotation(input: RotationInput, current: AnchorFacts): number | undefined {
  const { spec, now } = input;
  if (
    !spec.identity.rotation.automatic ||
    !current.notAfter ||
    spec.identity.trustAnchor.source !== "Generated"
  )
    return undefined;
  const due = current.notAfter.getTime() - parseDuration(spec.identity.rotation.before);
  return Math.min(due - now.getTime(), 12 * 3600_000);
}
