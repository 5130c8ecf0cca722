// The version skew policy of the control plane, as a pure function (see docs/upgrades.md):
// - downgrades are never silent: any older version is refused;
// - upgrades: within a major, at most one minor release at a time (1.2.x → 1.3.y);
// - a new major, a skipped minor or any downgrade needs spec.upgrade.force;
// - proxies: within a major, at most one minor release from the control plane (proxyInSkew).
import semver from "semver";

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
      message: `${running} → ${desired} skips ${to.minor - from.minor - 1} minor release(s); upgrade to ${from.major}.${from.minor + 1}.x first or set spec.upgrade.force: true`,
    };
  }
  return { allowed: true };
}

/**
 * The skew policy between a proxy and the control plane that serves it: the same major release
 * and at most one minor release apart, either way (a 1.3 control plane serves 1.2 and 1.4
 * proxies, not 1.1). A forced control-plane upgrade that skips a minor release leaves the
 * proxies outside it until they restart. Versions that do not parse are not judged.
 */
export function proxyInSkew(proxy: string, controlPlane: string): boolean {
  const p = semver.parse(proxy);
  const c = semver.parse(controlPlane);
  if (!p || !c) return true;
  return p.major === c.major && Math.abs(p.minor - c.minor) <= 1;
}
