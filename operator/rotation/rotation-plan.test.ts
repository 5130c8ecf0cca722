import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import {
  type AnchorFacts,
  type ProxyReport,
  planRotation,
  type RotationInput,
  type TrustAnchorStatus,
} from "./rotation-plan.ts";

const T0 = new Date("2026-11-25T12:00:00Z");
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const FP1 = "aa".repeat(32);
const FP2 = "bb".repeat(32);

function spec(identity: Record<string, unknown> = {}): MeshSpec {
  const r = validateMeshSpec({
    version: "1.0.0",
    identity: {
      anchorLifetime: "100h",
      issuerLifetime: "50h",
      leafLifetime: "1h",
      rotation: { before: "10h" },
      ...identity,
    },
  });
  assert.ok(r.ok, r.errors.join("; "));
  return r.value;
}
const anchors: Record<number, AnchorFacts> = {
  1: { ready: true, fingerprint: FP1, notAfter: at(100 * 3600) },
  2: { ready: true, fingerprint: FP2, notAfter: at(200 * 3600) },
};
const proxy = (trusted: string[], leafAnchor?: string): ProxyReport => ({ trusted, leafAnchor });

function step(status: TrustAnchorStatus | undefined, over: Partial<RotationInput> = {}) {
  return planRotation({
    spec: spec(),
    status,
    rotateRequest: undefined,
    anchor: (g) => anchors[g] ?? { ready: false },
    issuerAnchor: FP1,
    proxies: [],
    now: T0,
    ...over,
  });
}

describe("trust-anchor rotation", () => {
  it("stays stable with one anchor until the rotation window, and says when to look again", () => {
    const d = step(undefined);
    assert.deepEqual(
      [d.anchorGenerations, d.signingGeneration, d.bundleGenerations, d.status.rotationPhase],
      [[1], 1, [1], "Stable"],
    );
    assert.equal(d.requeueAfterMs, 12 * 3600_000, "capped; the window opens at 90h");
    assert.equal(d.status.fingerprint, FP1);
  });

  it("walks every phase and never drops an anchor a live leaf chains to", () => {
    const proxies = [proxy([FP1]), proxy([FP1])];
    const start = step(undefined, { now: at(91 * 3600), proxies });
    assert.equal(start.status.rotationPhase, "AnchorCreated");
    assert.deepEqual([start.anchorGenerations, start.bundleGenerations], [[1, 2], [1]]);
    assert.match(start.events[0]?.message ?? "", /within 10h/);
    const published = step(start.status, { proxies });
    assert.deepEqual(
      [published.status.rotationPhase, published.bundleGenerations, published.signingGeneration],
      ["BundlePublished", [1, 2], 1],
    );
    const waiting = step(published.status, { proxies: [proxy([FP1, FP2]), proxy([FP1])] });
    assert.deepEqual(
      [waiting.status.rotationPhase, waiting.status.proxiesDone, waiting.status.proxiesTotal],
      ["BundlePublished", 1, 2],
    );
    const trusted = [proxy([FP1, FP2], FP1), proxy([FP1, FP2], FP1)];
    const switched = step(waiting.status, { proxies: trusted, now: at(10) });
    assert.deepEqual(
      [switched.status.rotationPhase, switched.signingGeneration, switched.bundleGenerations],
      ["IssuerSwitched", 2, [1, 2]],
    );
    const oldLeaves = step(switched.status, { proxies: trusted, issuerAnchor: FP2, now: at(20) });
    assert.equal(oldLeaves.status.rotationPhase, "IssuerSwitched", "leaves still chain to anchor 1");
    assert.deepEqual(oldLeaves.bundleGenerations, [1, 2]);
    const renewed = [proxy([FP1, FP2], FP2), proxy([FP1, FP2], FP2)];
    const issuerNotYet = step(switched.status, { proxies: renewed, issuerAnchor: FP1, now: at(20) });
    assert.equal(issuerNotYet.status.rotationPhase, "IssuerSwitched", "the issuer must be re-issued first");
    const removed = step(switched.status, { proxies: renewed, issuerAnchor: FP2, now: at(30) });
    assert.deepEqual(
      [removed.status.rotationPhase, removed.anchorGenerations, removed.bundleGenerations],
      ["OldAnchorRemoved", [2], [2]],
    );
    const done = step(removed.status, { proxies: renewed, issuerAnchor: FP2, now: at(31) });
    assert.deepEqual(
      [done.status.rotationPhase, done.status.generation, done.status.fingerprint],
      ["Stable", 2, FP2],
    );
    assert.deepEqual(
      done.events.map((e) => e.reason),
      ["RotationComplete"],
    );
  });

  it("removes the old anchor once the longest leaf lifetime has passed, even without reports", () => {
    const s: TrustAnchorStatus = {
      rotationPhase: "IssuerSwitched",
      generation: 1,
      nextGeneration: 2,
      nextFingerprint: FP2,
      phaseSince: T0.toISOString(),
    };
    const silent = [proxy([FP1, FP2])];
    assert.equal(
      step(s, { proxies: silent, issuerAnchor: FP2, now: at(3599) }).status.rotationPhase,
      "IssuerSwitched",
    );
    assert.equal(
      step(s, { proxies: silent, issuerAnchor: FP2, now: at(3600) }).status.rotationPhase,
      "OldAnchorRemoved",
    );
  });

  it("rotates on request, once per annotation value, and not for an external anchor", () => {
    const asked = step(undefined, { rotateRequest: "2026-11-25" });
    assert.equal(asked.status.rotationPhase, "AnchorCreated");
    assert.equal(asked.status.lastRotationRequest, "2026-11-25");
    const again = step(
      { rotationPhase: "Stable", generation: 2, lastRotationRequest: "2026-11-25" },
      { rotateRequest: "2026-11-25" },
    );
    assert.equal(again.status.rotationPhase, "Stable");
    const external = step(undefined, {
      spec: spec({ trustAnchor: { source: "Secret", secretRef: { name: "x", namespace: "y" } } }),
      rotateRequest: "now",
    });
    assert.equal(external.status.rotationPhase, "Stable");
  });

  it("resumes from any phase after a restart with the same decision", () => {
    const s: TrustAnchorStatus = {
      rotationPhase: "BundlePublished",
      generation: 1,
      nextGeneration: 2,
      nextFingerprint: FP2,
      phaseSince: T0.toISOString(),
    };
    const a = step(s, { proxies: [proxy([FP1])] });
    const b = step(s, { proxies: [proxy([FP1])] });
    assert.deepEqual(a, b);
    assert.deepEqual(a.events, []);
  });
});
