// The Argo CD objects the GitOps tests install, as pure functions of their inputs: the argocd-cm
// snippet Trellis ships (argocd/argocd-cm.yaml, rendered from the health.lua files so the two
// cannot disagree), the other ConfigMaps and Secret Argo CD reads, the default AppProject, the
// cluster Secret that declares the local API server as a destination, and an Application.
// Does not own: starting Argo CD (argocd-processes.ts) or reading Application status.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";

export const ARGOCD_NAMESPACE = "argocd";
export const healthChecksDir = fileURLToPath(
  new URL("../../argocd/resource_customizations", import.meta.url),
);
export const argocdCmSnippetPath = fileURLToPath(new URL("../../argocd/argocd-cm.yaml", import.meta.url));

type Manifest = Record<string, unknown>;

const partOfArgoCd = { "app.kubernetes.io/part-of": "argocd" };

/** `resource.customizations.health.<group>_<Kind>` → health.lua, for every kind under `dir`. */
export function healthCustomizations(dir = healthChecksDir): Record<string, string> {
  const data: Record<string, string> = {};
  for (const group of readdirSync(dir).sort()) {
    for (const kind of readdirSync(join(dir, group)).sort()) {
      data[`resource.customizations.health.${group}_${kind}`] = readFileSync(
        join(dir, group, kind, "health.lua"),
        "utf8",
      );
    }
  }
  return data;
}

/** The argocd-cm ConfigMap with Trellis's health checks: what users merge into their own. */
export function argocdCm(extraData: Record<string, string> = {}): Manifest {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: "argocd-cm",
      namespace: ARGOCD_NAMESPACE,
      labels: { "app.kubernetes.io/name": "argocd-cm", ...partOfArgoCd },
    },
    data: { ...healthCustomizations(), ...extraData },
  };
}

/** The text of argocd/argocd-cm.yaml (checked to be up to date by argocd-config.test.ts). */
export function renderArgocdCmSnippet(): string {
  const header = [
    "# Trellis's Argo CD health checks for Mesh, ServiceProfile and Certificate, as argocd-cm keys.",
    "# Merge the data keys into your argocd-cm (see docs/argocd.md), e.g.:",
    "#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file argocd/argocd-cm.yaml",
    "# Generated from argocd/resource_customizations/*/*/health.lua: edit those, then run",
    "#   UPDATE_GOLDEN=1 node --import tsx --test test/argocd/argocd-config.test.ts",
  ].join("\n");
  return `${header}\n${stringify(argocdCm(), { lineWidth: 0 })}`;
}

/** Everything Argo CD's controller and repo-server read from their namespace, besides argocd-cm. */
export function argocdSupportObjects(): Manifest[] {
  return [
    { apiVersion: "v1", kind: "Namespace", metadata: { name: ARGOCD_NAMESPACE } },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "argocd-rbac-cm", namespace: ARGOCD_NAMESPACE, labels: partOfArgoCd },
    },
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "argocd-cmd-params-cm", namespace: ARGOCD_NAMESPACE, labels: partOfArgoCd },
    },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "argocd-secret", namespace: ARGOCD_NAMESPACE, labels: partOfArgoCd },
      stringData: { "server.secretkey": "trellis-test-only-not-a-secret" },
    },
    {
      apiVersion: "argoproj.io/v1alpha1",
      kind: "AppProject",
      metadata: { name: "default", namespace: ARGOCD_NAMESPACE },
      spec: {
        sourceRepos: ["*"],
        destinations: [{ server: "*", namespace: "*" }],
        clusterResourceWhitelist: [{ group: "*", kind: "*" }],
      },
    },
  ];
}

export interface ClusterCredentials {
  name: string;
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * A cluster Secret: Argo CD's host processes have no in-cluster config, so the local API server
 * is declared as a named destination with the client certificate of the test's admin.
 */
export function clusterSecret(c: ClusterCredentials): Manifest {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: `cluster-${c.name}`,
      namespace: ARGOCD_NAMESPACE,
      labels: { "argocd.argoproj.io/secret-type": "cluster" },
    },
    stringData: {
      name: c.name,
      server: c.server,
      config: JSON.stringify({
        tlsClientConfig: { caData: b64(c.caPem), certData: b64(c.certPem), keyData: b64(c.keyPem) },
      }),
    },
  };
}

export interface ApplicationOptions {
  name: string;
  repoURL: string;
  path: string;
  server: string;
  /** Automated sync with prune and self-heal (default true). */
  automated?: boolean;
  syncOptions?: string[];
  targetRevision?: string;
}

export function application(o: ApplicationOptions): Manifest {
  return {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Application",
    metadata: { name: o.name, namespace: ARGOCD_NAMESPACE },
    spec: {
      project: "default",
      source: { repoURL: o.repoURL, targetRevision: o.targetRevision ?? "HEAD", path: o.path },
      destination: { server: o.server },
      syncPolicy: {
        ...(o.automated === false ? {} : { automated: { prune: true, selfHeal: true } }),
        ...(o.syncOptions?.length ? { syncOptions: o.syncOptions } : {}),
      },
    },
  };
}

/** Manifests as one multi-document YAML stream, for `kubectl apply -f -`. */
export function yamlStream(manifests: Manifest[]): string {
  return manifests.map((m) => stringify(m, { lineWidth: 0 })).join("---\n");
}
