// A trust anchor the user brings in a Secret (Mesh spec.identity.trustAnchor.source: Secret),
// against the real cluster and the real operator: a missing or unusable Secret is a condition and
// a Warning Event (the operator keeps running); a valid one signs the issuer and is the trust
// bundle; the user rotates it by updating the Secret (new anchor in tls.crt, old one kept in
// ca.crt), and Trellis never starts a rotation of its own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fingerprint, pemBlocks, privateKeyToPem, verifyChain } from "../../pki/index.ts";
import { DAY, fromNow, trustAnchor } from "../../pki/testing/hierarchy.ts";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";

type Authority = ReturnType<typeof trustAnchor>;

describe("user-provided trust anchor", { timeout: 300_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  let nudges = 0;

  const condition = (type: string) =>
    cluster.kubectl([
      "get",
      "mesh",
      "default",
      "-o",
      `jsonpath={.status.conditions[?(@.type=="${type}")].status}/{.status.conditions[?(@.type=="${type}")].reason}`,
    ]);
  const trustAnchorStatus = () =>
    JSON.parse(
      cluster.kubectl(["get", "mesh", "default", "-o", "jsonpath={.status.trustAnchor}"]) || "{}",
    ) as {
      fingerprint?: string;
      rotationPhase?: string;
      bundleFingerprints?: string[];
      message?: string;
    };
  const secretPem = (ns: string, name: string, key: string) =>
    Buffer.from(
      cluster.kubectl(["-n", ns, "get", "secret", name, "-o", `jsonpath={.data.${key.replace(".", "\\.")}}`]),
      "base64",
    ).toString("utf8");
  const bundle = () =>
    pemBlocks(
      cluster.kubectl([
        "-n",
        "shop",
        "get",
        "configmap",
        "trellis-trust-bundle",
        "-o",
        "jsonpath={.data.ca-bundle\\.crt}",
      ]),
      "CERTIFICATE",
    ).map((der) => fingerprint(der));
  const issuerDer = () =>
    pemBlocks(secretPem("trellis-system", "trellis-identity-issuer", "tls.crt"), "CERTIFICATE")[0];
  const putUserSecret = (tlsCrt: string, tlsKey: string, caCrt?: string) => {
    const data: Record<string, string> = { "tls.crt": tlsCrt, "tls.key": tlsKey };
    if (caCrt) data["ca.crt"] = caCrt;
    cluster.kubectl(
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "Secret",
        type: "Opaque",
        metadata: { name: "corp-root", namespace: "security" },
        data: Object.fromEntries(
          Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
        ),
      }),
    );
    // The user's Secret is re-read every minute (it is not watched); a touch of the Mesh makes
    // the test not wait for that.
    cluster.kubectl(["annotate", "mesh", "default", "--overwrite", `test.trellis.dev/nudge=${++nudges}`]);
  };
  const keyOf = (a: Authority) => privateKeyToPem(a.keys.privateKey);
  const warnings = () =>
    cluster.kubectl([
      "get",
      "events",
      "--field-selector",
      "involvedObject.kind=Mesh,type=Warning",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 1 });
    await installCrds(cluster);
    cluster.kubectl(["create", "namespace", "security"]);
    cluster.kubectl(["create", "namespace", "shop"]);
    cluster.kubectl(["annotate", "namespace", "shop", "trellis.dev/inject=enabled"]);
    operator = await startOperator(cluster, ["--no-leader-elect"]);
  });
  after(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  it("reports a missing Secret, then an unusable one, as a condition and an Event", async () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      "apiVersion: trellis.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec:\n  version: 1.0.0\n  identity:\n    trustAnchor: { source: Secret, secretRef: { name: corp-root, namespace: security } }\n",
    );
    await waitFor(
      async () => condition("Degraded") === "True/TrustAnchorSecretNotFound",
      60_000,
      "Degraded/TrustAnchorSecretNotFound",
    );
    await waitFor(
      async () => condition("Ready") === "False/TrustAnchorSecretNotFound",
      60_000,
      "Ready=False/TrustAnchorSecretNotFound",
    );
    // An anchor whose key is not P-256 (here: another anchor's key does not match) is refused.
    const a = trustAnchor("corp root A");
    putUserSecret(a.certificate.pem, keyOf(trustAnchor("stranger")));
    await waitFor(
      async () => condition("Degraded") === "True/TrustAnchorInvalid",
      60_000,
      "TrustAnchorInvalid",
    );
    assert.match(trustAnchorStatus().message ?? "", /security\/corp-root/);
    assert.match(warnings(), /TrustAnchorSecretNotFound/);
    assert.match(warnings(), /TrustAnchorInvalid/);
    assert.equal(operator.process.exitCode(), undefined, "the operator keeps running");
    // No hot loop: a refused Secret is looked at again in a minute, not in a tight loop.
    const reconciles = () =>
      fetch(`http://127.0.0.1:${operator.port}/metrics`)
        .then((r) => r.text())
        .then((t) =>
          t
            .split("\n")
            .filter(
              (l) => l.includes('controller="mesh"') && l.startsWith("trellis_controller_reconcile_total"),
            )
            .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0),
        );
    const before = await reconciles();
    await new Promise((r) => setTimeout(r, 5000));
    assert.ok((await reconciles()) - before < 10, "a refused Secret does not spin the reconcile");
  });

  let first: Authority;
  it("signs the issuer with the user's anchor and publishes it as the trust bundle", async () => {
    first = trustAnchor("corp root A");
    putUserSecret(first.certificate.pem, keyOf(first));
    const fp = fingerprint(first.certificate.der);
    await waitFor(async () => trustAnchorStatus().fingerprint === fp, 60_000, "the user's anchor in status");
    cluster.kubectl(["wait", "--for=condition=Ready", "--timeout=120s", "mesh/default"]);
    assert.equal(condition("Degraded"), "False/Healthy");
    const issuer = issuerDer();
    assert.ok(issuer);
    assert.ok(verifyChain([issuer], [first.certificate.der]).ok, "the issuer chains to the user's anchor");
    assert.deepEqual(bundle(), [fp]);
    assert.match(trustAnchorStatus().message ?? "", /does not rotate/);
    assert.throws(
      () => cluster.kubectl(["-n", "trellis-system", "get", "certificate", "trellis-trust-anchor-1"]),
      /NotFound/,
      "no generated anchor",
    );
    // A rotation request is not for a user's anchor.
    cluster.kubectl(["annotate", "mesh", "default", "trellis.dev/rotate-trust-anchor=now"]);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(trustAnchorStatus().rotationPhase, "Stable");
    assert.equal(trustAnchorStatus().fingerprint, fp);
  });

  it("follows the user's rotation: new anchor signs, old one stays in the bundle while listed in ca.crt", async () => {
    const next = trustAnchor("corp root B");
    const [fpA, fpB] = [fingerprint(first.certificate.der), fingerprint(next.certificate.der)];
    const before = issuerDer();
    // Step 1: both anchors published, A still signing.
    putUserSecret(first.certificate.pem, keyOf(first), first.certificate.pem + next.certificate.pem);
    await waitFor(async () => bundle().join() === [fpA, fpB].join(), 60_000, "A and B in the bundle");
    assert.ok(issuerDer()?.equals(before as Buffer), "the issuer is untouched while A signs");
    // Step 2: B signs, A stays trusted.
    putUserSecret(next.certificate.pem, keyOf(next), first.certificate.pem + next.certificate.pem);
    await waitFor(
      async () => verifyChain([issuerDer() as Buffer], [next.certificate.der]).ok,
      60_000,
      "the issuer re-signed by B",
    );
    assert.deepEqual(bundle(), [fpB, fpA]);
    assert.equal(trustAnchorStatus().fingerprint, fpB);
    // Step 3: A leaves.
    putUserSecret(next.certificate.pem, keyOf(next));
    await waitFor(async () => bundle().join() === fpB, 60_000, "only B in the bundle");

    // An expired anchor is refused; the last valid one stays in use and the mesh stays Ready.
    const expired = trustAnchor("expired", { notBefore: fromNow(-10 * DAY), notAfter: fromNow(-DAY) });
    putUserSecret(expired.certificate.pem, keyOf(expired));
    await waitFor(
      async () => condition("Degraded") === "True/TrustAnchorExpired",
      60_000,
      "TrustAnchorExpired",
    );
    assert.match(condition("Ready"), /^True\//, "the last valid anchor keeps the mesh working");
    assert.deepEqual(bundle(), [fpB], "the bundle keeps the last valid anchor");
    assert.ok(verifyChain([issuerDer() as Buffer], [next.certificate.der]).ok);
    assert.match(warnings(), /TrustAnchorExpired/);
  });
});
