// The argocd-cm snippet Trellis ships (argocd/argocd-cm.yaml) holds exactly the health.lua files
// of argocd/resource_customizations, and the objects the GitOps harness installs are well formed.
// Regenerate the snippet with:  UPDATE_GOLDEN=1 node --import tsx --test test/argocd/argocd-config.test.ts
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { assertGolden } from "../golden.ts";
import {
  application,
  argocdCmSnippetPath,
  clusterSecret,
  healthCustomizations,
  renderArgocdCmSnippet,
} from "./argocd-config.ts";

describe("Argo CD configuration", () => {
  it("argocd/argocd-cm.yaml is up to date with the health.lua files", () => {
    assertGolden(argocdCmSnippetPath, renderArgocdCmSnippet());
  });

  it("argocd-cm names one health check per Trellis kind, in Argo CD's key format", () => {
    const cm = parse(readFileSync(argocdCmSnippetPath, "utf8")) as { data: Record<string, string> };
    assert.deepEqual(Object.keys(cm.data).sort(), [
      "resource.customizations.health.trellis.dev_Certificate",
      "resource.customizations.health.trellis.dev_Mesh",
      "resource.customizations.health.trellis.dev_ServiceProfile",
    ]);
    assert.deepEqual(cm.data, healthCustomizations());
  });

  it("declares the local cluster with its client certificate, base64 in the config JSON", () => {
    const secret = clusterSecret({
      name: "local",
      server: "https://127.0.0.1:6443",
      caPem: "CA",
      certPem: "CERT",
      keyPem: "KEY",
    }) as { metadata: { labels: Record<string, string> }; stringData: Record<string, string> };
    assert.equal(secret.metadata.labels["argocd.argoproj.io/secret-type"], "cluster");
    assert.deepEqual(JSON.parse(secret.stringData.config ?? ""), {
      tlsClientConfig: { caData: "Q0E=", certData: "Q0VSVA==", keyData: "S0VZ" },
    });
  });

  it("renders an automated Application only with the sync options asked for", () => {
    const app = application({ name: "a", repoURL: "git://x/r.git", path: "p", server: "https://s" }) as {
      spec: { syncPolicy: Record<string, unknown> };
    };
    assert.deepEqual(app.spec.syncPolicy, { automated: { prune: true, selfHeal: true } });
  });
});
