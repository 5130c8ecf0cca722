// Trellis driven from git by a real Argo CD (v3.6.1 repo-server and application-controller),
// against the local cluster with the operator as a real process: an Application holding a Mesh,
// ServiceProfiles and Certificates is Healthy only once the mesh is Ready; it never drifts (with
// and without server-side apply) because the operator never writes what users own; upgrades go
// through git commits, a failed canary shows Degraded with Trellis's reason and a revert
// recovers; pruning and self-heal work without the operator thrashing.
// The first run builds Argo CD (hack/build-argocd.sh, ~10 min cold); warm it runs in ~2 minutes.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { metricValue, type OperatorProcess, operatorHttp, startOperator } from "../operator-process.ts";
import {
  type ApplicationView,
  ArgoApplication,
  healthStatus,
  isSyncedAndHealthy,
  resourceHealth,
  syncStatus,
} from "./argocd-application.ts";
import { auditApiServerArgs, describeWrite, WriteCounter } from "./argocd-audit.ts";
import type { GitRepo } from "./argocd-git.ts";
import { ArgoCd, waitForCrds } from "./argocd-processes.ts";
import { meshManifest, shopManifests, userObjects } from "./argocd-repo-content.ts";

const crdDir = fileURLToPath(new URL("../../crds", import.meta.url));
const trellisCrds = ["meshes.trellis.dev", "serviceprofiles.trellis.dev", "certificates.trellis.dev"];
const report = (line: string) => process.stderr.write(`[argocd] ${line}\n`);

interface MeshView {
  metadata: { generation: number };
  status?: {
    version?: string;
    phase?: string;
    observedGeneration?: number;
    conditions?: Array<{ type: string; status: string; reason: string }>;
  };
}

describe("Trellis through a real Argo CD", { timeout: 600_000 }, () => {
  const auditDir = mkdtempSync(join(tmpdir(), "trellis-audit-"));
  const audit = auditApiServerArgs(auditDir);
  const writes = new WriteCounter(audit.logPath);
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  let argo: ArgoCd;
  let repo: GitRepo;
  let app: ArgoApplication;

  const mesh = (): MeshView =>
    JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as MeshView;
  const meshReady = (m: MeshView) => m.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
  const reconciles = async () =>
    metricValue((await operatorHttp(operator, "/metrics")).body, "trellis_controller_reconcile_total");

  /** Pushes the repository's HEAD and tells Argo CD, as a git webhook would; returns the time. */
  const pushAndNotify = (): number => {
    repo.push();
    const at = Date.now();
    app.refresh("normal");
    return at;
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 2, apiServerArgs: audit.args });
    cluster.kubectl(["apply", "--server-side", "-f", crdDir]);
    await waitForCrds(cluster, trellisCrds);
    operator = await startOperator(cluster, ["--no-leader-elect"]);
    argo = await ArgoCd.start(cluster);
    repo = argo.git.createRepo("platform", join(argo.dir, "work-platform"));
    repo.write("config/mesh.yaml", meshManifest({ version: "1.0.0", controlPlaneDeadline: "20s" }));
    for (const [path, text] of shopManifests()) repo.write(`config/${path}`, text);
    repo.commit("Mesh 1.0.0 and the shop team's profiles and certificates");
    repo.push();
  });
  after(async () => {
    await argo?.stop();
    await operator?.stop();
    await cluster?.stop();
    if (process.env.TRELLIS_KEEP_LOGS) process.stderr.write(`audit log kept in ${audit.logPath}\n`);
    else rmSync(auditDir, { recursive: true, force: true });
  });

  it("syncs an Application with a Mesh, ServiceProfiles and Certificates, Healthy only once the mesh is Ready", async () => {
    writes.mark();
    const started = Date.now();
    app = ArgoApplication.apply(cluster, {
      name: "platform",
      repoURL: repo.url,
      path: "config",
      server: argo.destination,
    });
    const watch = await app.watch();
    await app.waitFor("Synced and Healthy", (a) => isSyncedAndHealthy(a, repo.head()), 180_000);
    const versions = watch.stop();
    const final = await app.get();
    const seen: string[] = [];
    const degraded = new Set<string>();
    let healthyWhileMeshUnready = false;
    for (const a of versions) {
      const health = healthStatus(a);
      if (health && seen.at(-1) !== health) seen.push(health);
      for (const r of a.status?.resources ?? []) {
        if (r.health?.status === "Degraded") degraded.add(`${r.kind}/${r.name}: ${r.health.message}`);
      }
      // Argo CD leaves missing resources out of health (the Mesh is in sync wave 1), so the
      // Application may be Healthy before the Mesh exists, but never while it exists unready.
      const mesh = resourceHealth(a, "Mesh", "default")?.status;
      if (health === "Healthy" && mesh !== undefined && mesh !== "Missing" && mesh !== "Healthy")
        healthyWhileMeshUnready = true;
    }
    report(
      `install: Application created → Synced/Healthy in ${((Date.now() - started) / 1000).toFixed(1)} s; health went ${seen.join(" → ")}`,
    );
    const installWrites = writes.operatorWritesSinceMark();
    report(
      `install: ${installWrites.length} operator API writes: ${summarize(installWrites.map(describeWrite))}`,
    );
    assert.equal(healthyWhileMeshUnready, false, "the Application was Healthy while the Mesh was not");
    assert.ok(meshReady(mesh()), "the Mesh is Ready once the Application is Healthy");
    assert.ok(seen.includes("Progressing"), `health passed through Progressing: ${seen.join(" → ")}`);
    assert.deepEqual([...degraded], [], "nothing is Degraded on the way to Ready");
    for (const [kind, name] of userObjects) {
      assert.equal(resourceHealth(final, kind, name)?.status, "Healthy", `${kind} ${name}`);
    }
    assert.match(resourceHealth(final, "Mesh", "default")?.message ?? "", /1\.0\.0/);
  });

  it("stays Synced through hard refreshes, with and without server-side apply; the operator never writes spec", async () => {
    const assertNoDrift = async (label: string) => {
      const before = (await app.get()).status?.operationState?.startedAt;
      writes.mark();
      for (let i = 0; i < 3; i++) {
        const after = await app.refreshAndWait("hard");
        assert.equal(
          syncStatus(after),
          "Synced",
          `${label}: refresh ${i + 1}\n${JSON.stringify(after.status?.resources)}`,
        );
        assert.equal(healthStatus(after), "Healthy");
      }
      assert.equal(
        (await app.get()).status?.operationState?.startedAt,
        before,
        `${label}: no sync was needed`,
      );
      const refreshWrites = writes.operatorWritesSinceMark();
      report(`${label}: 3 hard refreshes, no sync, ${refreshWrites.length} operator API writes`);
      assert.deepEqual(
        refreshWrites.map(describeWrite),
        [],
        `${label}: the operator wrote while nothing changed`,
      );
    };
    await assertNoDrift("client-side apply");

    app = ArgoApplication.apply(cluster, {
      name: "platform",
      repoURL: repo.url,
      path: "config",
      server: argo.destination,
      syncOptions: ["ServerSideApply=true"],
    });
    // A commit makes Argo CD sync again, now with server-side apply.
    repo.write(
      "config/mesh.yaml",
      meshManifest({ version: "1.0.0", controlPlaneDeadline: "20s", labels: { team: "platform" } }),
    );
    const sha = repo.commit("Label the mesh");
    pushAndNotify();
    await app.waitFor(
      "synced with server-side apply",
      (a) => isSyncedAndHealthy(a, sha) && a.status?.operationState?.syncResult?.revision === sha,
    );
    await assertNoDrift("server-side apply");

    for (const [kind, name, namespace] of userObjects) {
      const obj = JSON.parse(
        cluster.kubectl([
          "get",
          kind,
          name,
          ...(namespace ? ["-n", namespace] : []),
          "-o",
          "json",
          "--show-managed-fields",
        ]),
      ) as {
        metadata: {
          managedFields?: Array<{
            manager: string;
            subresource?: string;
            fieldsV1?: Record<string, unknown>;
          }>;
        };
      };
      for (const entry of obj.metadata.managedFields ?? []) {
        if (!entry.manager.startsWith("trellis-operator")) continue; // and trellis-operator-rollout
        assert.ok(
          !("f:spec" in (entry.fieldsV1 ?? {})),
          `${kind} ${name}: trellis-operator manages spec fields: ${JSON.stringify(entry.fieldsV1)}`,
        );
      }
    }
  });

  it("upgrades through git: Progressing while Trellis canaries, Healthy after; a failed canary is Degraded; a revert recovers", async () => {
    writes.mark();
    const reconcilesBefore = await reconciles();
    repo.write(
      "config/mesh.yaml",
      meshManifest({ version: "1.1.0", controlPlaneDeadline: "20s", labels: { team: "platform" } }),
    );
    const upgrade = repo.commit("Upgrade the mesh to 1.1.0");
    const watch = await app.watch();
    const pushed = pushAndNotify();
    await app.waitFor(
      "upgraded to 1.1.0 and Healthy",
      (a) => isSyncedAndHealthy(a, upgrade) && mesh().status?.version === "1.1.0",
      180_000,
    );
    const upgradeSeconds = (Date.now() - pushed) / 1000;
    const versions = watch.stop();
    // Argo CD shows the Mesh's state at each of its refreshes; a KWOK canary can be over within
    // one, so the Upgrading message is seen in most runs, not all. What must always hold: the
    // commit made the Application Progressing because of the Mesh, every message says why, and
    // the new revision is Healthy only once the Mesh runs 1.1.0.
    const progressing = meshHealthWhileProgressing(versions);
    assert.ok(progressing.length > 0, "the Application went Progressing because of the Mesh");
    for (const m of progressing) {
      assert.match(
        m,
        /^(Waiting for the Trellis operator to observe generation \d+|Upgrading: .*1\.1\.0.*)$/,
      );
    }
    for (const a of versions) {
      if (a.status?.sync?.revision !== upgrade || syncStatus(a) !== "Synced" || healthStatus(a) !== "Healthy")
        continue;
      assert.match(resourceHealth(a, "Mesh", "default")?.message ?? "", /1\.1\.0 is available/);
    }
    const upgradeWrites = writes.operatorWritesSinceMark();
    report(
      `upgrade 1.0.0 → 1.1.0: commit → Healthy in ${upgradeSeconds.toFixed(1)} s; Mesh health while progressing: ${progressing.map((m) => `"${m}"`).join(" → ")}`,
    );
    report(
      `upgrade: ${upgradeWrites.length} operator API writes, ${(await reconciles()) - reconcilesBefore} reconciles`,
    );
    report(`upgrade writes: ${summarize(upgradeWrites.map(describeWrite))}`);

    repo.write(
      "config/mesh.yaml",
      meshManifest({
        version: "1.2.0-never-ready",
        controlPlaneDeadline: "20s",
        labels: { team: "platform" },
      }),
    );
    const broken = repo.commit("Upgrade the mesh to 1.2.0-never-ready");
    const brokenPushed = pushAndNotify();
    const degraded = await app.waitFor(
      "Degraded after the canary fails",
      (a) => healthStatus(a) === "Degraded",
      180_000,
    );
    assert.equal(syncStatus(degraded), "Synced", "git and the cluster agree; the release itself failed");
    assert.match(
      resourceHealth(degraded, "Mesh", "default")?.message ?? "",
      /^UpgradeFailed: .*1\.2\.0-never-ready/,
    );
    report(
      `failed canary: commit → Degraded in ${((Date.now() - brokenPushed) / 1000).toFixed(1)} s; Mesh health "${resourceHealth(degraded, "Mesh", "default")?.message}"`,
    );

    const revert = repo.revert(broken);
    const revertPushed = pushAndNotify();
    await app.waitFor("recovered after the revert", (a) => isSyncedAndHealthy(a, revert), 180_000);
    report(`revert: commit → Healthy in ${((Date.now() - revertPushed) / 1000).toFixed(1)} s`);
    assert.equal(mesh().status?.version, "1.1.0");
  });

  it("shows a paused upgrade as Suspended, and Healthy once a commit resumes it", async () => {
    const labels = { team: "platform" };
    repo.write(
      "config/mesh.yaml",
      meshManifest({ version: "1.2.0", controlPlaneDeadline: "20s", labels, paused: true }),
    );
    const paused = repo.commit("Upgrade the mesh to 1.2.0, paused");
    pushAndNotify();
    const suspended = await app.waitFor(
      "Suspended while the upgrade is paused",
      (a) =>
        syncStatus(a) === "Synced" && a.status?.sync?.revision === paused && healthStatus(a) === "Suspended",
      60_000,
    );
    const message = resourceHealth(suspended, "Mesh", "default")?.message ?? "";
    assert.match(message, /^Upgrade paused: upgrade to 1\.2\.0 is paused/);
    report(`paused upgrade: Mesh health Suspended "${message}"`);

    // `paused: false`, not the line deleted: Argo CD's diff does not see a field removed from git
    // (with server-side apply the cluster kept `paused: true` and the Application stayed Synced).
    repo.write(
      "config/mesh.yaml",
      meshManifest({ version: "1.2.0", controlPlaneDeadline: "20s", labels, paused: false }),
    );
    const resumed = repo.commit("Resume the upgrade to 1.2.0");
    pushAndNotify();
    await app.waitFor(
      "Healthy on 1.2.0",
      (a) => isSyncedAndHealthy(a, resumed) && mesh().status?.version === "1.2.0",
      120_000,
    );
  });

  it("prunes a ServiceProfile removed from git, reverts a hand edit, and the operator converges without thrashing", async () => {
    repo.remove("config/service-profile-api.yaml");
    const pruned = repo.commit("Remove the api ServiceProfile");
    pushAndNotify();
    await app.waitFor("pruned", (a) => isSyncedAndHealthy(a, pruned), 120_000);
    await waitFor(
      async () =>
        !cluster.kubectl(["-n", "shop", "get", "serviceprofiles", "-o", "name"]).includes("api.shop"),
      30_000,
      "the api ServiceProfile to be deleted",
    );

    await sleep(3000);
    writes.mark();
    const reconcilesBefore = await reconciles();
    const generation = mesh().metadata.generation;
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--type=merge",
      "-p",
      '{"spec":{"upgrade":{"controlPlaneDeadline":"45s"}}}',
    ]);
    await waitFor(
      async () => {
        const m = mesh();
        const deadline = cluster.kubectl([
          "get",
          "mesh",
          "default",
          "-o",
          "jsonpath={.spec.upgrade.controlPlaneDeadline}",
        ]);
        return (
          deadline === "20s" &&
          m.metadata.generation > generation + 1 &&
          m.status?.observedGeneration === m.metadata.generation
        );
      },
      60_000,
      "Argo CD to revert the hand edit and the operator to observe it",
    );
    await app.waitFor("Synced and Healthy after self-heal", (a) => isSyncedAndHealthy(a, pruned), 60_000);
    // A quiet period: a thrashing operator would keep writing now.
    const settled = mesh().metadata.generation;
    await sleep(10_000);
    const healWrites = writes.operatorWritesSinceMark();
    const healReconciles = (await reconciles()) - reconcilesBefore;
    report(
      `self-heal: generation ${generation} → ${settled}; ${healWrites.length} operator writes, ${healReconciles} reconciles`,
    );
    report(`self-heal writes: ${summarize(healWrites.map(describeWrite))}`);
    assert.equal(mesh().metadata.generation, settled, "nobody changed the Mesh after self-heal");
    assert.ok(meshReady(mesh()));
    assert.ok(
      healWrites.length <= 6,
      `operator writes after a hand edit: ${healWrites.map(describeWrite).join("\n")}`,
    );
    assert.ok(healReconciles <= 20, `reconciles after a hand edit: ${healReconciles}`);
  });
});

/** The Mesh's health messages, in order, while it made the Application Progressing. */
function meshHealthWhileProgressing(versions: ApplicationView[]): string[] {
  const messages: string[] = [];
  for (const a of versions) {
    const mesh = resourceHealth(a, "Mesh", "default");
    if (healthStatus(a) !== "Progressing" || mesh?.status !== "Progressing") continue;
    if (messages.at(-1) !== mesh.message) messages.push(mesh.message ?? "");
  }
  return messages;
}

function summarize(lines: string[]): string {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts].map(([l, n]) => (n > 1 ? `${n}× ${l}` : l)).join("; ");
}
