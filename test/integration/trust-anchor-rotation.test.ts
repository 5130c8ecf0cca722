// Trust-anchor rotation against the real cluster, with KWOK pods standing in for proxies: the
// test plays the proxies' part by annotating their pods with what they report (the anchors they
// trust, the anchor their leaf chains to), and checks that each phase waits for exactly that,
// that the operator can be killed in any phase, and that the old anchor leaves only at the end.
// (With real proxies reporting through the identity service, the same rotation runs under mTLS
// traffic in test/integration/proxy-trust-report.test.ts.)
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fingerprint, pemBlocks } from "../../pki/index.ts";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";

interface Anchor {
  rotationPhase?: string;
  generation?: number;
  fingerprint?: string;
  nextFingerprint?: string;
  bundleFingerprints?: string[];
  proxiesDone?: number;
  proxiesTotal?: number;
}

describe("trust-anchor rotation", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;

  const anchor = (): Anchor =>
    JSON.parse(
      cluster.kubectl(["get", "mesh", "default", "-o", "jsonpath={.status.trustAnchor}"]) || "{}",
    ) as Anchor;
  const waitPhase = (phase: string, timeoutMs = 60_000) =>
    waitFor(async () => anchor().rotationPhase === phase, timeoutMs, `rotation phase ${phase}`).catch(
      (err: Error) => {
        throw new Error(`${err.message}; status.trustAnchor=${JSON.stringify(anchor())}`);
      },
    );
  const bundleIn = (ns: string) =>
    pemBlocks(
      cluster.kubectl([
        "-n",
        ns,
        "get",
        "configmap",
        "trellis-trust-bundle",
        "-o",
        "jsonpath={.data.ca-bundle\\.crt}",
      ]),
      "CERTIFICATE",
    ).map((der) => fingerprint(der));
  const report = (trusted: string[], leafAnchor?: string) => {
    const args = [
      "-n",
      "shop",
      "annotate",
      "pods",
      "-l",
      "app=web",
      "--overwrite",
      `trellis.dev/trust-bundle-fingerprints=${trusted.join(",")}`,
    ];
    if (leafAnchor) args.push(`trellis.dev/leaf-anchor-fingerprint=${leafAnchor}`);
    cluster.kubectl(args);
  };

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 1 });
    await installCrds(cluster);
    operator = await startOperator(cluster, ["--no-leader-elect"]);
    cluster.kubectl(
      ["apply", "-f", "-"],
      "apiVersion: trellis.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec:\n  version: 1.0.0\n  identity: { leafLifetime: 1h }\n",
    );
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
    // Two "proxies": pods stamped as injected, in a meshed namespace.
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["annotate", "namespace", "shop", "trellis.dev/inject=enabled"]);
    for (const name of ["web-a", "web-b"]) {
      cluster.kubectl([
        "-n",
        "shop",
        "run",
        name,
        "--image=localhost/web:1",
        "--labels=app=web,trellis.dev/proxy-version=1.0.0",
      ]);
    }
    await waitFor(
      async () =>
        cluster.kubectl(["-n", "shop", "get", "pods", "-o", "jsonpath={.items[*].status.phase}"]) ===
        "Running Running",
      30_000,
      "pods",
    );
  });
  after(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  it("publishes the bundle to meshed namespaces and rotates through every phase on request", async () => {
    const first = anchor();
    assert.equal(first.rotationPhase, "Stable");
    assert.ok(first.fingerprint);
    await waitFor(async () => bundleIn("shop").join() === first.fingerprint, 30_000, "bundle in shop");
    report([first.fingerprint as string], first.fingerprint);

    cluster.kubectl(["annotate", "mesh", "default", "trellis.dev/rotate-trust-anchor=now"]);
    await waitPhase("BundlePublished");
    const next = anchor().nextFingerprint as string;
    assert.ok(next && next !== first.fingerprint);
    await waitFor(
      async () => bundleIn("shop").sort().join() === [first.fingerprint, next].sort().join(),
      30_000,
      "old+new in shop",
    );
    assert.match(
      cluster.kubectl(["get", "mesh", "default"]),
      /default\s+1\.0\.0\s+True/,
      "the mesh stays Ready during a rotation",
    );

    // The operator dies in the middle of the rotation; its successor continues from status.
    await operator.kill();
    operator = await startOperator(cluster, ["--no-leader-elect"]);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(anchor().rotationPhase, "BundlePublished", "waits until every proxy trusts the new anchor");
    assert.deepEqual([anchor().proxiesDone, anchor().proxiesTotal], [0, 2]);

    report([first.fingerprint as string, next], first.fingerprint);
    await waitPhase("IssuerSwitched");
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(anchor().rotationPhase, "IssuerSwitched", "the old anchor stays while leaves chain to it");
    assert.equal(bundleIn("shop").length, 2);
    const issuerCa = cluster.kubectl([
      "-n",
      "trellis-system",
      "get",
      "secret",
      "trellis-identity-issuer",
      "-o",
      "jsonpath={.data.ca\\.crt}",
    ]);
    assert.equal(
      fingerprint(pemBlocks(Buffer.from(issuerCa, "base64").toString(), "CERTIFICATE")[0] as Buffer),
      next,
      "issuer re-signed by the new anchor",
    );

    report([first.fingerprint as string, next], next);
    await waitPhase("Stable");
    const done = anchor();
    assert.deepEqual([done.generation, done.fingerprint], [2, next]);
    await waitFor(async () => bundleIn("shop").join() === next, 30_000, "only the new anchor in shop");
    assert.throws(
      () => cluster.kubectl(["-n", "trellis-system", "get", "certificate", "trellis-trust-anchor-1"]),
      /NotFound/,
    );
    const reasons = cluster.kubectl([
      "get",
      "events",
      "--field-selector",
      "involvedObject.kind=Mesh",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    for (const r of [
      "RotationStarted",
      "BundlePublished",
      "IssuerSwitched",
      "OldAnchorRemoved",
      "RotationComplete",
    ])
      assert.match(reasons, new RegExp(r));
    const injectorCa = cluster.kubectl([
      "-n",
      "trellis-system",
      "get",
      "secret",
      "trellis-injector-tls",
      "-o",
      "jsonpath={.data.ca\\.crt}",
    ]);
    assert.equal(
      fingerprint(pemBlocks(Buffer.from(injectorCa, "base64").toString(), "CERTIFICATE")[0] as Buffer),
      next,
      "serving certificates re-issued",
    );
  });
});
