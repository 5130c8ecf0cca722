// Checks of what Trellis stands on: the Kubernetes version, the user's access (--pre), the CRDs
// and the operator process. Pure over CheckFacts.
import semver from "semver";
import { MIN_KUBE_VERSION } from "../../operator/olm-bundle-listing.ts";
import { humanDuration } from "../output.ts";
import type { CheckFacts } from "./check-facts.ts";
import type { CheckResult } from "./checks.ts";

/** The newest Kubernetes minor release Trellis is tested on (test/cluster builds v1.36.3). */
export const TESTED_KUBERNETES_MINOR = "1.36";
const INSTALL_HINT = "kubectl apply --server-side -f deploy/trellis.yaml (or install from OperatorHub)";

export function kubernetesChecks(facts: CheckFacts): CheckResult[] {
  const group = "kubernetes";
  const id = "kubernetes-version";
  const v = semver.coerce(facts.serverVersion ?? "");
  if (!v)
    return [
      { group, id, status: "warn", message: `cannot read the Kubernetes version (${facts.serverVersion})` },
    ];
  const shown = facts.serverVersion ?? v.version;
  if (semver.lt(v, MIN_KUBE_VERSION))
    return [
      {
        group,
        id,
        status: "fail",
        message: `Kubernetes ${shown} is older than ${MIN_KUBE_VERSION}, the oldest Trellis supports`,
        hint: "upgrade the cluster",
      },
    ];
  if (semver.gt(v, `${TESTED_KUBERNETES_MINOR}.999`))
    return [
      {
        group,
        id,
        status: "warn",
        message: `Kubernetes ${shown} is newer than ${TESTED_KUBERNETES_MINOR}, the newest Trellis is tested on`,
      },
    ];
  return [
    {
      group,
      id,
      status: "ok",
      message: `Kubernetes ${shown} is supported (${MIN_KUBE_VERSION} to ${TESTED_KUBERNETES_MINOR}.x)`,
    },
  ];
}

export function accessChecks(facts: CheckFacts): CheckResult[] {
  const denied = (facts.access ?? []).filter((a) => !a.allowed);
  const what = (a: { verb: string; resource: string }) => `${a.verb} ${a.resource}`;
  if (denied.length === 0)
    return [
      {
        group: "access",
        id: "install-access",
        status: "ok",
        message: "you may create everything an installation creates",
      },
    ];
  return [
    {
      group: "access",
      id: "install-access",
      status: "fail",
      message: `you may not ${denied.map(what).join(", ")}`,
      hint: "installing Trellis needs cluster-admin (or ask one to install it)",
    },
  ];
}

export function crdChecks(facts: CheckFacts, pre: boolean): CheckResult[] {
  const group = "crds";
  const id = "crds";
  if (!facts.crds)
    return [{ group, id, status: "warn", message: "cannot read CustomResourceDefinitions (forbidden)" }];
  const missing = facts.crds.filter((c) => !c.installed).map((c) => c.name);
  const stale = facts.crds.filter((c) => c.installed && !c.current).map((c) => c.name);
  if (pre) {
    if (missing.length === facts.crds.length)
      return [{ group, id, status: "ok", message: "no Trellis CRDs installed yet" }];
    return [
      {
        group,
        id,
        status: "warn",
        message: `Trellis CRDs are already installed (${facts.crds.length - missing.length} of ${facts.crds.length})`,
        hint: "run check without --pre to check the installation",
      },
    ];
  }
  if (missing.length > 0)
    return [
      { group, id, status: "fail", message: `not installed: ${missing.join(", ")}`, hint: INSTALL_HINT },
    ];
  if (stale.length > 0) {
    const operator = operatorVersion(facts);
    const same = operator === facts.cliVersion;
    return [
      {
        group,
        id,
        status: same ? "fail" : "warn",
        message: `${stale.join(", ")} ${stale.length === 1 ? "differs" : "differ"} from the schema of Trellis ${facts.cliVersion}${same ? "" : ` (this command is ${facts.cliVersion}, the operator ${operator ?? "unknown"})`}`,
        hint: same
          ? `apply the CRDs of Trellis ${facts.cliVersion}: ${INSTALL_HINT}`
          : "use the kubectl-trellis of the operator's release",
      },
    ];
  }
  return [
    {
      group,
      id,
      status: "ok",
      message: `${facts.crds.map((c) => c.name.split(".")[0]).join(", ")} installed, schema of Trellis ${facts.cliVersion}`,
    },
  ];
}

function meshesCurrent(facts: CheckFacts): boolean {
  const meshes = facts.meshes ?? [];
  return (
    meshes.length > 0 &&
    meshes.every((m) => (m.status?.observedGeneration ?? -1) >= (m.metadata?.generation ?? 0))
  );
}

/** The operator's version: its Deployment's image tag, else what it wrote into a Mesh's status. */
export function operatorVersion(facts: CheckFacts): string | undefined {
  return (
    facts.operator?.deployments[0]?.version ??
    facts.meshes?.find((m) => m.status?.operatorVersion)?.status?.operatorVersion
  );
}

export function operatorChecks(facts: CheckFacts): CheckResult[] {
  const group = "operator";
  const op = facts.operator;
  if (!op)
    return [
      { group, id: "operator", status: "warn", message: "cannot read Deployments or Leases (forbidden)" },
    ];
  const version = operatorVersion(facts);
  const out: CheckResult[] = [];
  const ready = op.deployments.filter((d) => d.ready > 0);
  const lease = op.lease;
  const renewedMs = lease?.renewTime ? facts.now.getTime() - Date.parse(lease.renewTime) : undefined;
  const leaseFresh = lease && renewedMs !== undefined && renewedMs <= 2 * lease.durationSeconds * 1000;
  const leaseText = lease
    ? `lease ${lease.namespace}/trellis-operator held by ${lease.holder}, renewed ${humanDuration(renewedMs ?? 0)} ago`
    : "";
  if (ready.length > 0) {
    const d = ready[0] ?? op.deployments[0];
    out.push({
      group,
      id: "operator",
      status: "ok",
      message: `operator ${version ?? "?"} running (${d?.namespace}/${d?.name} ${d?.ready}/${d?.replicas} ready)`,
    });
  } else if (op.deployments.length > 0) {
    const d = op.deployments[0];
    out.push({
      group,
      id: "operator",
      status: "fail",
      message: `operator Deployment ${d?.namespace}/${d?.name} has no ready replica`,
      hint: `kubectl -n ${d?.namespace} describe deployment ${d?.name}`,
    });
  } else if (leaseFresh) {
    out.push({
      group,
      id: "operator",
      status: "ok",
      message: `operator ${version ?? "?"} running (${leaseText})`,
    });
  } else if (!lease && version && meshesCurrent(facts)) {
    // An operator outside the cluster without leader election (as `npm run up` runs it) leaves
    // no trace but what it writes.
    out.push({
      group,
      id: "operator",
      status: "warn",
      message: `no operator Deployment or leader Lease; every Mesh's status is current (written by operator ${version})`,
      hint: "an operator running outside the cluster without leader election cannot be seen from here",
    });
  } else {
    out.push({
      group,
      id: "operator",
      status: "fail",
      message: lease
        ? `no operator is leading: ${leaseText}`
        : "no operator found: no Deployment labelled app.kubernetes.io/name=trellis-operator and no leader Lease",
      hint: INSTALL_HINT,
    });
  }
  if (version && version !== facts.cliVersion)
    out.push({
      group,
      id: "operator-version",
      status: "warn",
      message: `the operator is ${version}, this command ${facts.cliVersion}`,
      hint: "use the kubectl-trellis of the operator's release",
    });
  return out;
}
