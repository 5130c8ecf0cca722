import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type MeshSpec, validateMeshSpec } from "../../api/index.ts";
import { type ControlPlaneState, planControlPlane, type VersionHealth } from "./control-plane-plan.ts";

const NOW = new Date("2026-11-25T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

function spec(version: string, upgrade: Record<string, unknown> = {}): MeshSpec {
  const r = validateMeshSpec({ version, upgrade: { controlPlaneDeadline: "5m", ...upgrade } });
  assert.ok(r.ok, r.errors.join("; "));
  return r.value;
}
const healthy =
  (...versions: string[]) =>
  (v: string): VersionHealth =>
    versions.includes(v) ? { healthy: true } : { healthy: false, detail: `identity 0/1 available` };

describe("control-plane plan", () => {
  it("installs, then reports Ready with an event once healthy", () => {
    const first = planControlPlane({ spec: spec("1.0.0"), state: {}, health: healthy(), now: NOW });
    assert.deepEqual([first.versions, first.phase, first.state], [["1.0.0"], "Installing", {}]);
    const done = planControlPlane({ spec: spec("1.0.0"), state: {}, health: healthy("1.0.0"), now: NOW });
    assert.deepEqual(
      [done.phase, done.state.version, done.events.map((e) => e.reason)],
      ["Ready", "1.0.0", ["Installed"]],
    );
  });

  it("is Degraded when the running version loses its components", () => {
    const p = planControlPlane({
      spec: spec("1.0.0"),
      state: { version: "1.0.0" },
      health: healthy(),
      now: NOW,
    });
    assert.deepEqual([p.phase, p.reason, p.versions], ["Degraded", "ComponentsUnavailable", ["1.0.0"]]);
  });

  it("emits one Event when the running control plane becomes unavailable and one when it is back", () => {
    const input = { spec: spec("1.0.0"), state: { version: "1.0.0" }, now: NOW };
    const events = (previousReason: string, h: (v: string) => VersionHealth) =>
      planControlPlane({ ...input, health: h, previousReason }).events.map((e) => `${e.type} ${e.reason}`);
    assert.deepEqual(events("Available", healthy()), ["Warning ComponentsUnavailable"]);
    assert.deepEqual(events("ComponentsUnavailable", healthy()), [], "no repeat while it lasts");
    assert.deepEqual(events("ComponentsUnavailable", healthy("1.0.0")), ["Normal ComponentsAvailable"]);
    assert.deepEqual(events("Available", healthy("1.0.0")), []);
  });

  it("starts a canary revision beside the running one, once", () => {
    const start = planControlPlane({
      spec: spec("1.1.0"),
      state: { version: "1.0.0" },
      health: healthy("1.0.0"),
      now: NOW,
    });
    assert.deepEqual(start.versions, ["1.0.0", "1.1.0"]);
    assert.equal(start.phase, "Upgrading");
    assert.deepEqual(
      start.events.map((e) => e.reason),
      ["UpgradeStarted"],
    );
    assert.equal(start.state.candidateSince, NOW.toISOString());
    assert.ok(start.requeueAfterMs !== undefined && start.requeueAfterMs > 299_000);
    // The same decision again (a resync, or a restarted operator) keeps the original start time and emits nothing.
    const again = planControlPlane({
      spec: spec("1.1.0"),
      state: start.state,
      health: healthy("1.0.0"),
      now: new Date(NOW.getTime() + 60_000),
    });
    assert.deepEqual([again.state, again.events], [start.state, []]);
  });

  it("promotes a healthy candidate and drops the old revision", () => {
    const state: ControlPlaneState = { version: "1.0.0", targetVersion: "1.1.0", candidateSince: ago(30) };
    const p = planControlPlane({ spec: spec("1.1.0"), state, health: healthy("1.0.0", "1.1.0"), now: NOW });
    assert.deepEqual(
      [p.versions, p.phase, p.state],
      [["1.1.0"], "Ready", { version: "1.1.0", previousVersion: "1.0.0" }],
    );
    assert.deepEqual(
      p.events.map((e) => e.reason),
      ["Upgraded"],
    );
  });

  it("rolls back a candidate that is not healthy by the deadline, and does not retry it", () => {
    const state: ControlPlaneState = { version: "1.0.0", targetVersion: "1.1.0", candidateSince: ago(301) };
    const p = planControlPlane({ spec: spec("1.1.0"), state, health: healthy("1.0.0"), now: NOW });
    assert.deepEqual([p.versions, p.phase, p.reason], [["1.0.0"], "RolledBack", "UpgradeFailed"]);
    assert.equal(p.state.failedVersion, "1.1.0");
    assert.match(p.message, /identity 0\/1 available/);
    assert.deepEqual(
      p.events.map((e) => [e.type, e.reason]),
      [["Warning", "RolledBack"]],
    );
    const later = planControlPlane({
      spec: spec("1.1.0"),
      state: p.state,
      health: healthy("1.0.0", "1.1.0"),
      now: NOW,
    });
    assert.deepEqual([later.versions, later.phase, later.events], [["1.0.0"], "RolledBack", []]);
    const fixed = planControlPlane({
      spec: spec("1.1.1"),
      state: p.state,
      health: healthy("1.0.0"),
      now: NOW,
    });
    assert.deepEqual([fixed.versions, fixed.phase], [["1.0.0", "1.1.1"], "Upgrading"]);
    const reverted = planControlPlane({
      spec: spec("1.0.0"),
      state: p.state,
      health: healthy("1.0.0"),
      now: NOW,
    });
    assert.deepEqual([reverted.phase, reverted.state.failedVersion], ["Ready", undefined]);
  });

  it("blocks versions outside the skew policy without touching the running revision", () => {
    const p = planControlPlane({
      spec: spec("1.3.0"),
      state: { version: "1.1.0" },
      health: healthy("1.1.0"),
      now: NOW,
    });
    assert.deepEqual([p.versions, p.phase, p.reason], [["1.1.0"], "UpgradeBlocked", "SkipsMinorRelease"]);
    const forced = planControlPlane({
      spec: spec("1.3.0", { force: true }),
      state: { version: "1.1.0" },
      health: healthy("1.1.0"),
      now: NOW,
    });
    assert.equal(forced.phase, "Upgrading");
  });

  it("holds a paused upgrade where it is, past the deadline too", () => {
    const state: ControlPlaneState = { version: "1.0.0", targetVersion: "1.1.0", candidateSince: ago(9999) };
    const p = planControlPlane({
      spec: spec("1.1.0", { paused: true }),
      state,
      health: healthy("1.0.0"),
      now: NOW,
    });
    assert.deepEqual(
      [p.versions, p.phase, p.state.candidateSince],
      [["1.0.0", "1.1.0"], "Paused", state.candidateSince],
    );
  });

  it("replaces the revision in place with strategy AllAtOnce", () => {
    const p = planControlPlane({
      spec: spec("1.1.0", { strategy: "AllAtOnce" }),
      state: { version: "1.0.0" },
      health: healthy("1.0.0"),
      now: NOW,
    });
    assert.deepEqual(p.versions, ["1.1.0"]);
  });
});
