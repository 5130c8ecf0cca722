// The Certificate controller on the real cluster: an anchor → issuer → serving chain issued into
// kubernetes.io/tls Secrets (checked by openssl), renewal at renewBefore, a missing issuer as a
// condition that clears when the issuer appears, and no key material in status or Events.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { installCrds, type OperatorProcess, startOperator } from "../operator-process.ts";

const cert = (name: string, spec: string) => `
apiVersion: trellis.dev/v1alpha1
kind: Certificate
metadata: { name: ${name}, namespace: default }
spec: ${spec}
`;

describe("Certificate controller", { timeout: 180_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  const secretData = (name: string, key: string) =>
    Buffer.from(
      cluster.kubectl(["get", "secret", name, "-o", `jsonpath={.data.${key.replace(".", "\\.")}}`]),
      "base64",
    ).toString();
  const ready = (name: string) =>
    cluster.kubectl([
      "get",
      "certificate",
      name,
      "-o",
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.status.conditions[?(@.type=="Ready")].reason}',
    ]);

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 0 });
    await installCrds(cluster);
    operator = await startOperator(cluster, ["--no-leader-elect"]);
  });
  after(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  it("reports a missing issuer, then issues the whole chain once it exists", async () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      cert(
        "web",
        "{ type: Serving, secretName: web-tls, issuerRef: { name: issuer }, dnsNames: [web.default.svc], duration: 2m, renewBefore: 90s }",
      ),
    );
    await waitFor(async () => ready("web") === "False/IssuerNotFound", 30_000, "IssuerNotFound");
    assert.match(
      cluster.kubectl(["get", "certificate", "web", "-o", "jsonpath={.status.conditions[0].message}"]),
      /issuerRef names Certificate issuer, which does not exist/,
    );
    cluster.kubectl(
      ["apply", "-f", "-"],
      cert("root", "{ type: TrustAnchor, secretName: root-tls, commonName: root.test, duration: 100h }"),
    );
    cluster.kubectl(
      ["apply", "-f", "-"],
      cert("issuer", "{ type: Issuer, secretName: issuer-tls, issuerRef: { name: root }, duration: 10h }"),
    );
    for (const n of ["root", "issuer", "web"])
      await waitFor(async () => ready(n) === "True/Issued", 30_000, `${n} issued`);
    const dir = mkdtempSync(join(tmpdir(), "trellis-certs-"));
    try {
      writeFileSync(join(dir, "ca.pem"), secretData("web-tls", "ca.crt"));
      writeFileSync(join(dir, "chain.pem"), secretData("web-tls", "tls.crt"));
      const [leaf, ...intermediates] = secretData("web-tls", "tls.crt").split(
        /(?=-----BEGIN CERTIFICATE-----)/,
      );
      writeFileSync(join(dir, "leaf.pem"), leaf ?? "");
      writeFileSync(join(dir, "untrusted.pem"), intermediates.join(""));
      const out = execFileSync(
        "openssl",
        [
          "verify",
          "-CAfile",
          join(dir, "ca.pem"),
          "-untrusted",
          join(dir, "untrusted.pem"),
          join(dir, "leaf.pem"),
        ],
        { encoding: "utf8" },
      );
      assert.match(out, /leaf\.pem: OK/);
      const text = execFileSync(
        "openssl",
        ["x509", "-in", join(dir, "leaf.pem"), "-noout", "-ext", "subjectAltName"],
        { encoding: "utf8" },
      );
      assert.match(text, /DNS:web\.default\.svc/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(
      cluster.kubectl(["get", "secret", "web-tls", "-o", "jsonpath={.type}"]),
      "kubernetes.io/tls",
    );
  });

  it("renews at renewBefore, and never puts key material in status or Events", async () => {
    const first = cluster.kubectl(["get", "certificate", "web", "-o", "jsonpath={.status.fingerprint}"]);
    const renewal = Date.parse(
      cluster.kubectl(["get", "certificate", "web", "-o", "jsonpath={.status.renewalTime}"]),
    );
    const notAfter = Date.parse(
      cluster.kubectl(["get", "certificate", "web", "-o", "jsonpath={.status.notAfter}"]),
    );
    assert.ok(Math.abs(notAfter - renewal - 90_000) < 2000, "renewal time is notAfter − renewBefore");
    await waitFor(
      async () => {
        const fp = cluster.kubectl(["get", "certificate", "web", "-o", "jsonpath={.status.fingerprint}"]);
        return fp !== "" && fp !== first;
      },
      90_000,
      "renewal",
      1000,
    );
    assert.ok(Date.now() >= renewal - 2000, "not renewed before its renewal time");
    assert.equal(cluster.kubectl(["get", "certificate", "web", "-o", "jsonpath={.status.revision}"]), "2");
    const everything = cluster.kubectl(["get", "certificates,events", "-A", "-o", "json"]);
    assert.doesNotMatch(everything, /PRIVATE KEY|BEGIN CERTIFICATE/);
    const events = cluster.kubectl([
      "get",
      "events",
      "--field-selector",
      "involvedObject.name=web",
      "-o",
      "jsonpath={.items[*].reason}",
    ]);
    assert.match(events, /Issued/);
    assert.match(events, /IssuerNotFound/);
  });

  it("refuses a spec it cannot honour with InvalidSpec naming the field", async () => {
    cluster.kubectl(
      ["apply", "-f", "-"],
      cert(
        "bad",
        "{ type: Serving, secretName: bad-tls, issuerRef: { name: issuer }, ipAddresses: [not-an-ip] }",
      ),
    );
    await waitFor(async () => ready("bad") === "False/InvalidSpec", 30_000, "InvalidSpec");
    assert.match(
      cluster.kubectl(["get", "certificate", "bad", "-o", "jsonpath={.status.conditions[0].message}"]),
      /spec\.ipAddresses\[0\]: "not-an-ip" is not an IP address/,
    );
  });
});
