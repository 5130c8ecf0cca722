// The Mesh lifecycle through the real API server, controllers and KWOK, with the operator as a
// real process: install to Ready, a canaried upgrade, a broken release rolled back, the operator
// killed mid-upgrade, and removal in order behind the finalizer.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";

interface MeshView {
  metadata: { generation: number; finalizers?: string[] };
  status?: {
    phase?: string;
    version?: string;
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
    controlPlane?: { failedVersion?: string; targetVersion?: string };
  };
}

/** Records Deployment watch events in trellis-system as "TYPE name available=N", in order. */
function watchDeployments(cluster: LocalCluster): { stop: () => string[] } {
  const lines: string[] = [];
  const child = spawn(
    cluster.binaries.kubectl,
    [
      "-n",
      "trellis-system",
      "get",
      "deployments",
      "--watch-only",
      "--output-watch-events",
      "-o",
      "jsonpath={.type} {.object.metadata.name} available={.object.status.availableReplicas}{'\\n'}",
    ],
    { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } },
  );
  createInterface({ input: child.stdout }).on("line", (l) => lines.push(l));
  return {
    stop: () => {
      child.kill();
      return lines;
    },
  };
}

describe("Mesh lifecycle", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;

  const mesh = (): MeshView =>
    JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as MeshView;
  const condition = (m: MeshView, type: string) => m.status?.conditions?.find((c) => c.type === type);
  const deployments = () =>
    cluster
      .kubectl(["-n", "trellis-system", "get", "deployments", "-o", "jsonpath={.items[*].metadata.name}"])
      .split(/\s+/)
      .filter(Boolean)
      .sort();
  const waitForMesh = (what: string, check: (m: MeshView) => boolean, timeoutMs = 90_000) =>
    waitFor(async () => check(mesh()), timeoutMs, what).catch((err: Error) => {
      throw new Error(`${err.message}\nmesh: ${JSON.stringify(mesh().status, null, 1)}`);
    });

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 2 });
    await installCrds(cluster);
    operator = await startOperator(cluster, ["--no-leader-elect"]);
  });
  after(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  it("installs the control plane and reports Ready with its version", async () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      "apiVersion: trellis.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec:\n  version: 1.0.0\n  upgrade: { controlPlaneDeadline: 20s }\n",
    );
    await waitForMesh("Mesh Ready", (m) => condition(m, "Ready")?.status === "True");
    const m = mesh();
    assert.equal(m.status?.version, "1.0.0");
    assert.equal(m.status?.observedGeneration, m.metadata.generation);
    assert.deepEqual(m.metadata.finalizers, ["trellis.dev/finalizer"]);
    assert.match(cluster.kubectl(["get", "meshes"]), /default\s+1\.0\.0\s+True\s+\S*\s*Ready/);
    assert.deepEqual(deployments(), [
      "trellis-destination-v1-0-0",
      "trellis-identity-v1-0-0",
      "trellis-injector-v1-0-0",
    ]);
    const certs = cluster.kubectl(["-n", "trellis-system", "get", "certificates"]);
    for (const name of [
      "trellis-trust-anchor-1",
      "trellis-identity-issuer",
      "trellis-injector",
      "trellis-destination",
    ]) {
      assert.match(certs, new RegExp(`${name}\\s+\\S+\\s+True`));
    }
    const events = cluster.kubectl([
      "get",
      "events",
      "-A",
      "--field-selector",
      "involvedObject.kind=Mesh",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    assert.match(events, /Installed/);
  });

  it("upgrades through a canary revision beside the old one", async () => {
    const watch = watchDeployments(cluster);
    await new Promise((r) => setTimeout(r, 1000));
    cluster.kubectl(["patch", "mesh", "default", "--type=merge", "-p", '{"spec":{"version":"1.1.0"}}']);
    await waitForMesh("upgrade to 1.1.0", (m) => {
      const names = deployments();
      return (
        m.status?.version === "1.1.0" &&
        condition(m, "Ready")?.status === "True" &&
        !names.some((n) => n.endsWith("v1-0-0"))
      );
    });
    const events = watch.stop();
    const firstOldDeleted = events.findIndex((e) => e.startsWith("DELETED") && e.includes("v1-0-0"));
    const newAvailable = events.findIndex((e) => e.includes("v1-1-0") && e.includes("available=1"));
    assert.ok(
      newAvailable >= 0 && firstOldDeleted > newAvailable,
      `old revision removed only after the new one was available:\n${events.join("\n")}`,
    );
    assert.deepEqual(deployments(), [
      "trellis-destination-v1-1-0",
      "trellis-identity-v1-1-0",
      "trellis-injector-v1-1-0",
    ]);
    const selector = cluster.kubectl([
      "-n",
      "trellis-system",
      "get",
      "svc",
      "trellis-identity",
      "-o",
      "jsonpath={.spec.selector.trellis\\.dev/revision}",
    ]);
    assert.equal(selector, "v1-1-0");
  });

  it("rolls back a release that never becomes healthy and reports Degraded", async () => {
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      '{"spec":{"version":"1.2.0-never-ready"}}',
    ]);
    await waitForMesh(
      "candidate deployed",
      () => deployments().some((n) => n.endsWith("never-ready")),
      30_000,
    );
    await waitForMesh("rollback", (m) => condition(m, "Degraded")?.status === "True", 60_000);
    const m = mesh();
    assert.equal(condition(m, "Degraded")?.reason, "UpgradeFailed");
    assert.match(
      condition(m, "Degraded")?.message ?? "",
      /1\.2\.0-never-ready did not become healthy within 20s/,
    );
    assert.equal(m.status?.version, "1.1.0");
    assert.equal(m.status?.phase, "RolledBack");
    await waitForMesh(
      "candidate removed",
      () => !deployments().some((n) => n.endsWith("never-ready")),
      30_000,
    );
  });

  it("resumes an upgrade after the operator is killed in the middle of it", async () => {
    // KWOK readies pods within one poll of this test, so the whole upgrade could finish before
    // the test saw it start (it did once in CI). Tainted nodes hold the new revision's pods
    // Pending: the upgrade is surely in its middle when the operator is killed. The taint goes
    // before the successor starts, well inside the Mesh's 20 s upgrade deadline.
    const hold = "trellis.test/hold=true:NoSchedule";
    cluster.kubectl(["taint", "nodes", "--all", hold]);
    try {
      cluster.kubectl(["patch", "mesh", "default", "--type=merge", "-p", '{"spec":{"version":"1.2.0"}}']);
      await waitForMesh("upgrade started", (m) => m.status?.controlPlane?.targetVersion === "1.2.0", 30_000);
      await operator.kill();
      assert.notEqual(mesh().status?.version, "1.2.0", "the upgrade was still in progress at the kill");
    } finally {
      cluster.kubectl(["taint", "nodes", "--all", `${hold}-`]);
    }
    operator = await startOperator(cluster, ["--no-leader-elect"]);
    await waitForMesh(
      "upgrade finished",
      (m) => m.status?.version === "1.2.0" && condition(m, "Ready")?.status === "True",
    );
    assert.deepEqual(deployments(), [
      "trellis-destination-v1-2-0",
      "trellis-identity-v1-2-0",
      "trellis-injector-v1-2-0",
    ]);
    const started = cluster.kubectl([
      "get",
      "events",
      "--field-selector",
      "involvedObject.kind=Mesh,reason=UpgradeStarted",
      "-o",
      "jsonpath={range .items[*]}{.message}{'\\n'}{end}",
    ]);
    assert.equal(
      started.split("\n").filter((l) => l.includes("1.2.0 beside")).length,
      1,
      `one UpgradeStarted for 1.2.0:\n${started}`,
    );
  });

  it("removes everything it created when the Mesh is deleted", async () => {
    cluster.kubectl(["delete", "mesh", "default", "--wait=true", "--timeout=120s"]);
    const left = cluster.kubectl([
      "get",
      "clusterroles,clusterrolebindings,mutatingwebhookconfigurations,namespaces",
      "-l",
      "app.kubernetes.io/managed-by=trellis",
      "-o",
      "name",
    ]);
    assert.equal(left.trim(), "");
    assert.throws(() => cluster.kubectl(["get", "namespace", "trellis-system"]), /NotFound/);
  });
});
