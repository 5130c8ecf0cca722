// The version skew policy of the control plane, as a pure function (see docs/upgrades.md):
// - downgrades are never silent: any older version is refused;
// - upgrades: within a major, at most one minor release at a time (1.2.x → 1.3.y);
// - a new major, a skipped minor or any downgrade needs spec.upgrade.force;
// - proxies: within a major, at most one minor release from the control plane (proxySkew).
import semver from "semver";
import { counted } from "../../api/index.ts";

export type SkewVerdict =
  | { allowed: true }
  | {
      allowed: false;
      reason: "InvalidVersion" | "Downgrade" | "SkipsMinorRelease" | "MajorUpgrade";
      message: string;
    };

export function checkVersionChange(
  running: string | undefined,
  desired: string,
  force: boolean,
): SkewVerdict {
  const to = semver.parse(desired);
  if (!to)
    return {
      allowed: false,
      reason: "InvalidVersion",
      message: `spec.version "${desired}" is not a semantic version`,
    };
  if (running === undefined || running === desired || force) return { allowed: true };
  const from = semver.parse(running);
  if (!from) return { allowed: true };
  if (semver.lt(to, from)) {
    return {
      allowed: false,
      reason: "Downgrade",
      message: `spec.version ${desired} is older than the running ${running}; downgrades need spec.upgrade.force: true`,
    };
  }
  if (to.major !== from.major) {
    return {
      allowed: false,
      reason: "MajorUpgrade",
      message: `upgrading from ${running} to a new major release ${desired} needs spec.upgrade.force: true`,
    };
  }
  if (to.minor - from.minor > 1) {
    return {
      allowed: false,
      reason: "SkipsMinorRelease",
      message: `${running} → ${desired} skips ${counted(to.minor - from.minor - 1, "minor release")}; upgrade to ${from.major}.${from.minor + 1}.x first or set spec.upgrade.force: true`,
    };
  }
  return { allowed: true };
}

/**
 * The data plane's skew policy: a proxy works with a control plane of the same major release
 * and at most one minor release away, older or newer (a proxy rollout may run ahead of the
 * control plane by one minor, as a control-plane upgrade runs ahead of the proxies). Returns
 * why a proxy version is outside it, or undefined when it is inside.
 */
export function proxySkew(controlPlane: string, proxy: string): string | undefined {
  const cp = semver.parse(controlPlane);
  const p = semver.parse(proxy);
  if (!cp || !p) return `proxy version "${proxy}" cannot be compared with control plane "${controlPlane}"`;
  if (cp.major !== p.major)
    return `proxy ${proxy} is a different major release than control plane ${controlPlane}`;
  const minors = p.minor - cp.minor;
  if (Math.abs(minors) > 1)
    return `proxy ${proxy} is ${Math.abs(minors)} minor releases ${minors < 0 ? "older" : "newer"} than control plane ${controlPlane} (at most 1)`;
  return undefined;
}
