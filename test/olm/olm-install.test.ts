// Trellis through a real Operator Lifecycle Manager, as a user gets it: the committed catalog
// served by `opm serve`, the Subscription from README.md, OLM resolving, unpacking (the one
// step done on the host, see olm-harness.ts) and installing the bundle. Then the operator runs
// with the ServiceAccount OLM created (its token, not cluster-admin) and brings a Mesh to Ready,
// which proves the CSV's RBAC; OLM upgrades it to the next release with the Mesh Ready and
// nothing re-issued; removing the Subscription and CSV leaves every Mesh, Certificate and Secret.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { repoRoot } from "../cluster/binaries.ts";
import { writeKubeconfig } from "../cluster/cluster-pki.ts";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { type OperatorProcess, startOperator } from "../operator-process.ts";
import { forbiddenLines, readmeSubscriptionYaml, snapshotMesh } from "./mesh-snapshot.ts";
import { OLM_NAMESPACE, OlmHarness } from "./olm-harness.ts";

const NS = "trellis-operator";
const CURRENT = "0.1.0";
const NEXT = "0.1.1";
const bundleImage = (v: string) => `localhost/trellis/operator-bundle:v${v}`;

describe("Trellis through a real OLM", { timeout: 420_000 }, () => {
  let cluster: LocalCluster;
  let olm: OlmHarness;
  let operator: OperatorProcess | undefined;
  let releaseDir: string;
  let catalogPort: number;

  const json = <T>(args: string[]): T => JSON.parse(cluster.kubectl([...args, "-o", "json"])) as T;
  const phaseOf = (csv: string) =>
    cluster.kubectl(["-n", NS, "get", "csv", csv, "-o", "jsonpath={.status.phase}", "--ignore-not-found"]);
  const meshReady = () =>
    cluster.kubectl([
      "get",
      "mesh",
      "default",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);
  /**
   * Waits for `what`, failing at once when the operator has been refused by the API server (a
   * permission missing from the CSV shows as a failure, not a retry loop); on timeout, says
   * what OLM and the operator were doing.
   */
  const waitOr = async (what: string, check: () => boolean, timeoutMs: number) => {
    let denied: string[] = [];
    await waitFor(
      async () => {
        denied = operator ? await forbiddenLines(operator) : [];
        return denied.length > 0 || check();
      },
      timeoutMs,
      what,
    ).catch((err: Error) => {
      const olmState = cluster.kubectl(["-n", NS, "get", "subscriptions,installplans,csv", "-o", "wide"]);
      throw new Error(
        `${err.message}\n${olmState}\nunpacked: ${olm.extractions.join("; ")}\nharness errors: ${olm.errors.slice(-3).join("; ")}`,
      );
    });
    assert.deepEqual(
      denied.slice(0, 5),
      [],
      `while waiting for ${what}, the operator was refused by the API server`,
    );
  };

  /** The operator on the host with a TokenRequest token of the ServiceAccount OLM created. */
  const startWithOlmServiceAccount = async (version: string) => {
    const token = cluster.kubectl(["-n", NS, "create", "token", "trellis-operator", "--duration=1h"]).trim();
    const kubeconfig = join(cluster.dir, `operator-sa-${version}.kubeconfig`);
    writeKubeconfig(kubeconfig, cluster.server, cluster.pki.caCert, { name: "trellis-operator", token });
    return startOperator(cluster, [`--kubeconfig=${kubeconfig}`, `--namespace=${NS}`], {
      TRELLIS_OPERATOR_VERSION: version,
    });
  };
  const assertNoForbidden = async () => {
    const denied = operator ? await forbiddenLines(operator) : [];
    assert.deepEqual(denied, [], `the operator was refused by the API server:\n${denied.join("\n")}`);
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 1 });
    olm = await OlmHarness.start(cluster);
    releaseDir = mkdtempSync(join(tmpdir(), "trellis-olm-next-"));
    execFileSync(
      process.execPath,
      ["--import", "tsx", "hack/olm-release.ts", "--version", NEXT, "--out", releaseDir],
      {
        cwd: repoRoot,
        stdio: "pipe",
      },
    );
    olm.addBundle(bundleImage(CURRENT), join(repoRoot, "olm/bundle"));
    olm.addBundle(bundleImage(NEXT), join(releaseDir, "bundle", NEXT));
  });
  after(async () => {
    await operator?.stop();
    await olm?.stop();
    await cluster?.stop();
    if (releaseDir) rmSync(releaseDir, { recursive: true, force: true });
  });

  it("installs from the catalog with the Subscription README.md gives users", async (t) => {
    catalogPort = await olm.serveCatalog(join(repoRoot, "olm/catalog"));
    cluster.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "operators.coreos.com/v1alpha1",
        kind: "CatalogSource",
        metadata: { name: "operatorhubio-catalog", namespace: OLM_NAMESPACE },
        spec: {
          sourceType: "grpc",
          address: `127.0.0.1:${catalogPort}`,
          displayName: "Trellis test catalog",
        },
      }),
    );
    await waitOr(
      "the CatalogSource to be READY",
      () =>
        cluster.kubectl([
          "-n",
          OLM_NAMESPACE,
          "get",
          "catalogsource",
          "operatorhubio-catalog",
          "-o",
          "jsonpath={.status.connectionState.lastObservedState}",
        ]) === "READY",
      60_000,
    );
    const started = Date.now();
    cluster.kubectl(["apply", "-f", "-"], readmeSubscriptionYaml());
    await waitOr(
      `CSV trellis.v${CURRENT} Succeeded`,
      () => phaseOf(`trellis.v${CURRENT}`) === "Succeeded",
      120_000,
    );
    t.diagnostic(`install: Subscription → CSV Succeeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const planComplete = () =>
      json<{ items: Array<{ spec: { clusterServiceVersionNames: string[] }; status?: { phase: string } }> }>([
        "-n",
        NS,
        "get",
        "installplans",
      ]).items.some(
        (p) =>
          p.status?.phase === "Complete" && p.spec.clusterServiceVersionNames.includes(`trellis.v${CURRENT}`),
      );
    await waitOr("the InstallPlan to be Complete", planComplete, 10_000);
    cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=30s",
      "crd/meshes.trellis.dev",
      "crd/serviceprofiles.trellis.dev",
      "crd/certificates.trellis.dev",
    ]);
    cluster.kubectl([
      "-n",
      NS,
      "wait",
      "--for=condition=Available",
      "--timeout=60s",
      "deployment/trellis-operator",
    ]);
  });

  it("runs with the ServiceAccount OLM created and reconciles the documented Mesh and the CSV's examples", async () => {
    operator = await startWithOlmServiceAccount(CURRENT);
    assert.match(
      cluster.kubectl([
        "auth",
        "whoami",
        `--kubeconfig=${join(cluster.dir, `operator-sa-${CURRENT}.kubeconfig`)}`,
      ]),
      /system:serviceaccount:trellis-operator:trellis-operator/,
      "the operator runs as OLM's ServiceAccount, not as cluster-admin",
    );
    cluster.kubectl(["apply", "-f", join(repoRoot, "docs/examples/mesh.yaml")]);
    // The CSV's alm-examples besides the Mesh: what a console offers on "Create".
    const examples = JSON.parse(
      cluster.kubectl([
        "-n",
        NS,
        "get",
        "csv",
        `trellis.v${CURRENT}`,
        "-o",
        "jsonpath={.metadata.annotations.alm-examples}",
      ]),
    ) as Array<{ kind: string }>;
    cluster.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: examples.filter((e) => e.kind !== "Mesh") }),
    );
    await waitOr("Mesh default Ready", () => meshReady() === "True", 90_000);
    await waitOr(
      "the example ServiceProfile and Certificate Ready",
      () =>
        cluster
          .kubectl([
            "-n",
            "default",
            "get",
            "serviceprofiles,certificates",
            "-o",
            'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
          ])
          .trim() === "True True",
      30_000,
    );
    const certs = cluster.kubectl(["-n", "trellis-system", "get", "certificates"]);
    for (const name of ["trellis-identity-issuer", "trellis-injector"])
      assert.match(certs, new RegExp(`${name}\\s+\\S+\\s+True`));
    const caBundle = cluster.kubectl([
      "get",
      "mutatingwebhookconfigurations",
      "-l",
      "app.kubernetes.io/part-of=trellis",
      "-o",
      "jsonpath={.items[*].webhooks[*].clientConfig.caBundle}",
    ]);
    assert.ok(caBundle.length > 100, "the injector webhook carries the CA bundle of its serving certificate");
    await assertNoForbidden();
  });

  it("upgrades to the next release: Mesh Ready throughout, nothing re-issued or restarted", async (t) => {
    const before = snapshotMesh(cluster);
    const watch = watchMeshReady(cluster);
    try {
      const started = Date.now();
      // A new catalog, as a new catalog image would bring; OLM follows the CatalogSource.
      const nextPort = await olm.serveCatalog(join(releaseDir, "catalog"));
      cluster.kubectl([
        "-n",
        OLM_NAMESPACE,
        "patch",
        "catalogsource",
        "operatorhubio-catalog",
        "--type=merge",
        "-p",
        JSON.stringify({ spec: { address: `127.0.0.1:${nextPort}` } }),
      ]);
      await olm.stopCatalog(catalogPort);
      await waitOr(
        `OLM to move to trellis.v${NEXT}`,
        () => phaseOf(`trellis.v${NEXT}`) === "Succeeded" && phaseOf(`trellis.v${CURRENT}`) === "",
        150_000,
      );
      t.diagnostic(
        `upgrade: new catalog → CSV trellis.v${NEXT} Succeeded, old CSV gone, in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      // The new operator pod takes over (on the host: the same ServiceAccount, a new process).
      await operator?.stop();
      operator = await startWithOlmServiceAccount(NEXT);
      await waitOr(
        "the Mesh to report the new operator version",
        () =>
          cluster.kubectl(["get", "mesh", "default", "-o", "jsonpath={.status.operatorVersion}"]) === NEXT,
        60_000,
      );
    } finally {
      const states = await watch.stop();
      assert.ok(
        states.length > 0 && states.every((s) => s === "True"),
        `Ready throughout: ${states.join(", ")}`,
      );
    }
    assert.match(
      cluster.kubectl([
        "get",
        "meshes",
        "-o",
        "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status,OPERATOR:.status.operatorVersion",
      ]),
      new RegExp(`default\\s+True\\s+${NEXT.replaceAll(".", "\\.")}`),
    );
    assert.deepEqual(
      snapshotMesh(cluster),
      before,
      "no Certificate re-issued, no Secret or Deployment changed",
    );
    await assertNoForbidden();
  });

  it("removing the Subscription and CSV leaves every Mesh, ServiceProfile, Certificate and Secret", async () => {
    await operator?.stop();
    operator = undefined;
    const before = snapshotMesh(cluster);
    cluster.kubectl(["-n", NS, "delete", "subscription", "trellis"]);
    cluster.kubectl(["-n", NS, "delete", "csv", `trellis.v${NEXT}`]);
    // kubectl waits until the CSV is gone. Seen once in CI (1 run of ~10): the CSV was back a
    // moment later, phase Succeeded, with no Subscription or InstallPlan left — likely OLM resolving
    // from a cache that still held the Subscription. A user deleting it again is done; so is
    // this test, which says how many times it had to.
    let recreated = 0;
    await waitOr(
      "OLM's Deployment and ServiceAccount to be removed",
      () => {
        // name=deletionTimestamp per CSV; an empty timestamp is a CSV nobody is deleting.
        const csvs = cluster
          .kubectl([
            "-n",
            NS,
            "get",
            "csv",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.deletionTimestamp} {end}",
          ])
          .trim();
        if (csvs !== "") {
          const live = csvs.split(" ").filter((c) => c.endsWith("="));
          if (live.length > 0) {
            recreated++;
            process.stderr.write(`CSV present again after its deletion: ${live.join(", ")}\n`);
            cluster.kubectl(["-n", NS, "delete", "csv", ...live.map((c) => c.slice(0, -1)), "--wait=false"]);
          }
          return false;
        }
        return (
          cluster
            .kubectl(["-n", NS, "get", "deployments,serviceaccounts", "-l", "olm.owner", "-o", "name"])
            .trim() === ""
        );
      },
      60_000,
    );
    if (recreated > 0) process.stderr.write(`the CSV was deleted ${recreated + 1} times\n`);
    assert.deepEqual(snapshotMesh(cluster), before);
    assert.equal(meshReady(), "True");
    assert.match(cluster.kubectl(["get", "crd", "-o", "name"]), /meshes\.trellis\.dev/);
  });
});

/** Every Ready status the Mesh shows while the watch runs, from kubectl's watch. */
function watchMeshReady(cluster: LocalCluster): { stop: () => Promise<string[]> } {
  const states: string[] = [];
  const child: ChildProcess = spawn(
    cluster.binaries.kubectl,
    [
      "get",
      "mesh",
      "default",
      "--watch",
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}{"\\n"}',
    ],
    { env: { ...process.env, KUBECONFIG: cluster.kubeconfigPath } },
  );
  if (child.stdout)
    createInterface({ input: child.stdout }).on("line", (l) => l.trim() && states.push(l.trim()));
  return {
    stop: async () => {
      child.kill();
      return states;
    },
  };
}
