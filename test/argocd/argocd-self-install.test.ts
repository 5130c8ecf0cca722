// Installing Trellis itself through a real Argo CD, on a cluster with nothing of Trellis in it:
// the Application of docs/examples/gitops/applications/trellis.yaml syncs the plain install
// manifests (deploy/trellis.yaml: CRDs, namespace, RBAC, the operator Deployment) and the Mesh
// in sync wave 1, in one sync operation. The operator Deployment's pods only pretend to run
// under KWOK, so the operator runs as a process on the host (started once its CRDs exist) and
// makes the Mesh Ready; the Application is Healthy only then.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "yaml";
import { LocalCluster } from "../cluster/local-cluster.ts";
import { type OperatorProcess, startOperator } from "../operator-process.ts";
import { ArgoApplication, isSyncedAndHealthy } from "./argocd-application.ts";
import type { ApplicationOptions } from "./argocd-config.ts";
import type { GitRepo } from "./argocd-git.ts";
import { ArgoCd, waitForCrds } from "./argocd-processes.ts";
import { gitopsExampleDir, installManifestPath, meshManifest } from "./argocd-repo-content.ts";

const report = (line: string) => process.stderr.write(`[argocd] ${line}\n`);

interface ExampleApplication {
  metadata: { name: string };
  spec: { source: { path: string }; syncPolicy: { syncOptions?: string[] } };
}

describe("Installing Trellis through a real Argo CD", { timeout: 420_000 }, () => {
  let cluster: LocalCluster;
  let argo: ArgoCd;
  let repo: GitRepo;
  let operator: OperatorProcess | undefined;

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 2 });
    argo = await ArgoCd.start(cluster);
    repo = argo.git.createRepo("cluster-config", join(argo.dir, "work-cluster-config"));
    repo.write("trellis/trellis.yaml", readFileSync(installManifestPath, "utf8"));
    repo.write("trellis/mesh.yaml", meshManifest({ version: "1.0.0", controlPlaneDeadline: "20s" }));
    repo.commit("Install Trellis with a Mesh");
    repo.push();
  });
  after(async () => {
    await operator?.stop();
    await argo?.stop();
    await cluster?.stop();
  });

  it("syncs the plain install manifests and a Mesh on an empty cluster in one sync, Healthy once the mesh is Ready", async () => {
    assert.equal(
      cluster.kubectl(["get", "crd", "-o", "name"]).includes("trellis.dev"),
      false,
      "no Trellis CRD yet",
    );
    const example = parse(
      readFileSync(join(gitopsExampleDir, "applications/trellis.yaml"), "utf8"),
    ) as ExampleApplication;
    const options: ApplicationOptions = {
      name: example.metadata.name,
      repoURL: repo.url,
      path: example.spec.source.path,
      server: argo.destination,
      syncOptions: example.spec.syncPolicy.syncOptions ?? [],
    };
    const started = Date.now();
    const app = ArgoApplication.apply(cluster, options);

    // The operator a user runs: here a host process, started as soon as its CRDs are there.
    let crdsAt = 0;
    while (!operator) {
      if (cluster.kubectl(["get", "crd", "-o", "name"]).includes("meshes.trellis.dev")) {
        crdsAt = Date.now();
        await waitForCrds(cluster, [
          "meshes.trellis.dev",
          "serviceprofiles.trellis.dev",
          "certificates.trellis.dev",
        ]);
        operator = await startOperator(cluster, ["--no-leader-elect"]);
      } else if (Date.now() - started > 120_000) {
        throw new Error("Argo CD did not create the Trellis CRDs within 2 minutes");
      } else await sleep(500);
    }
    const final = await app.waitFor("Synced and Healthy", (a) => isSyncedAndHealthy(a, repo.head()), 240_000);
    const seconds = (Date.now() - started) / 1000;
    report(
      `self-install: Application created → Synced/Healthy in ${seconds.toFixed(1)} s (CRDs applied after ${((crdsAt - started) / 1000).toFixed(1)} s)`,
    );

    const op = final.status?.operationState;
    assert.equal(op?.phase, "Succeeded", op?.message);
    const history = (final.status as { history?: unknown[] } | undefined)?.history ?? [];
    assert.equal(history.length, 1, "one sync operation");
    const resources = final.status?.resources ?? [];
    for (const kind of ["CustomResourceDefinition", "Namespace", "ClusterRole", "Deployment", "Mesh"]) {
      assert.ok(
        resources.some((r) => r.kind === kind),
        `${kind} is part of the Application`,
      );
    }
    for (const r of resources) assert.equal(r.status, "Synced", `${r.kind} ${r.name}`);
    for (const r of resources.filter((x) => x.health)) {
      assert.equal(r.health?.status, "Healthy", `${r.kind} ${r.name}: ${r.health?.message}`);
    }
    const mesh = JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as {
      metadata: { creationTimestamp: string };
      status?: { conditions?: Array<{ type: string; status: string; lastTransitionTime: string }> };
    };
    const ready = mesh.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    const at = (iso: string | undefined) => ((Date.parse(iso ?? "") - started) / 1000).toFixed(0);
    report(
      `self-install: Mesh created (wave 1) at ~${at(mesh.metadata.creationTimestamp)} s, Ready at ~${at(ready?.lastTransitionTime)} s (API timestamps, 1 s resolution)`,
    );
  });
});
