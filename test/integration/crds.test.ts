// The CRDs on a real API server: they install and become Established, defaults are filled in
// by the API server, objects that break the schema or its CEL rules are refused with a message
// that names the problem, `kubectl get trellis` lists all three kinds with their columns.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { validateMeshSpec } from "../../api/index.ts";
import { LocalCluster } from "../cluster/local-cluster.ts";
import { installCrds } from "../operator-process.ts";

const mesh = (spec: string) => `
apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
${spec}
`;

describe("CRDs on a real API server", { timeout: 120_000 }, () => {
  let cluster: LocalCluster;
  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0, controllers: false });
    await installCrds(cluster);
  });
  after(async () => cluster?.stop());

  it("fills defaults from the schema, the same ones the operator's validator fills", () => {
    cluster.kubectl(["apply", "-f", "-"], mesh("  version: 1.0.0"));
    const stored = JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as { spec: unknown };
    const local = validateMeshSpec({ version: "1.0.0" });
    assert.ok(local.ok, local.errors.join("; "));
    assert.deepEqual(stored.spec, local.value);
    assert.equal(
      (local.value as { identity: { trustDomain: string } }).identity.trustDomain,
      "cluster.local",
    );
  });

  const refused: Array<[string, string, RegExp]> = [
    ["a version that is not semver", "  version: latest", /spec.version.*should match/],
    [
      "high availability with one replica",
      "  version: 1.0.0\n  controlPlane: { highAvailability: true, replicas: 1 }",
      /highAvailability needs replicas >= 2/,
    ],
    [
      "a leaf that outlives its issuer",
      "  version: 1.0.0\n  identity: { leafLifetime: 1000h, issuerLifetime: 720h }",
      /leafLifetime < issuerLifetime/,
    ],
    [
      "an external anchor without a secret",
      "  version: 1.0.0\n  identity: { trustAnchor: { source: Secret } }",
      /source Secret needs secretRef/,
    ],
    [
      "waves that never reach 100%",
      "  version: 1.0.0\n  upgrade: { waves: [10, 50] }",
      /the last wave must be 100/,
    ],
    [
      "an unknown log level",
      "  version: 1.0.0\n  proxy: { logLevel: loud }",
      /spec.proxy.logLevel.*Unsupported value/,
    ],
    [
      "a control-plane toleration with an unknown effect",
      "  version: 1.0.0\n  controlPlane: { tolerations: [{ key: infra, operator: Exists, effect: Sometimes }] }",
      /spec.controlPlane.tolerations\[0\].effect.*Unsupported value/,
    ],
    [
      "a malformed duration",
      "  version: 1.0.0\n  identity: { leafLifetime: 1day }",
      /spec.identity.leafLifetime/,
    ],
  ];
  for (const [what, spec, message] of refused) {
    it(`refuses ${what}`, () => {
      assert.throws(() => cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], mesh(spec)), message);
    });
  }

  it("refuses a Certificate without an issuer unless it is a trust anchor", () => {
    const cert = (type: string) => `
apiVersion: trellis.dev/v1alpha1
kind: Certificate
metadata: { name: c, namespace: default }
spec: { type: ${type}, secretName: c-tls, dnsNames: [a.example] }
`;
    assert.throws(
      () => cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], cert("Issuer")),
      /issuerRef is required/,
    );
    cluster.kubectl(["apply", "--dry-run=server", "-f", "-"], cert("TrustAnchor"));
  });

  it("kubectl get trellis lists all three kinds with their columns", () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      `
apiVersion: trellis.dev/v1alpha1
kind: ServiceProfile
metadata: { name: web.default.svc.cluster.local, namespace: default }
spec:
  routes: [{ name: get-items, condition: { method: GET, pathRegex: "/items/[^/]+" }, isRetryable: true, timeout: 500ms }]
---
apiVersion: trellis.dev/v1alpha1
kind: Certificate
metadata: { name: anchor, namespace: default }
spec: { type: TrustAnchor, secretName: anchor-tls }
`,
    );
    cluster.kubectl([
      "patch",
      "mesh",
      "default",
      "--subresource=status",
      "--type=merge",
      "-p",
      String(
        JSON.stringify({
          status: {
            version: "1.0.0",
            phase: "Ready",
            proxies: { total: 10, updated: 7, summary: "7/10" },
            conditions: [
              {
                type: "Ready",
                status: "True",
                reason: "Available",
                message: "ok",
                lastTransitionTime: new Date().toISOString(),
              },
            ],
          },
        }),
      ),
    ]);
    const out = cluster.kubectl(["get", "trellis"]);
    assert.match(out, /NAME\s+VERSION\s+READY\s+PROXIES\s+PHASE\s+AGE/);
    assert.match(out, /mesh\.trellis\.dev\/default\s+1\.0\.0\s+True\s+7\/10\s+Ready\s/);
    assert.match(out, /NAME\s+ROUTES\s+READY\s+AGE/);
    assert.match(out, /serviceprofile\.trellis\.dev\/web\.default\.svc\.cluster\.local/);
    assert.match(out, /NAME\s+TYPE\s+READY\s+SECRET\s+EXPIRES\s+AGE/);
    assert.match(out, /certificate\.trellis\.dev\/anchor\s+TrustAnchor\s+anchor-tls/);
    assert.match(cluster.kubectl(["get", "mesh"]), /^NAME\s+VERSION/);
  });
});
