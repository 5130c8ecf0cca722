// The ClusterServiceVersion of one operator release, as a pure function of the release (version,
// upgrade edges) and one image setting. Its RBAC and Deployment come from install-manifests.ts,
// so OLM installs and plain installs run the same operator with the same permissions; the
// listing (description, icon, examples, descriptors) comes from olm-bundle-listing.ts.
// Does not own the bundle's layout or the catalog (olm-bundle.ts, olm-bundle-catalog.ts).
import { KINDS } from "../api/crd.ts";
import { GROUP, VERSION } from "../api/group.ts";
import {
  OPERATOR_CLUSTER_RULES,
  OPERATOR_NAME,
  OPERATOR_NAMESPACE_RULES,
  operatorDeploymentSpec,
  policyRules,
} from "./install-manifests.ts";
import {
  almExamples,
  CAPABILITIES,
  CATEGORIES,
  DESCRIPTION,
  DISPLAY_NAME,
  exampleMeshVersion,
  icon,
  KEYWORDS,
  LINKS,
  MAINTAINERS,
  MIN_KUBE_VERSION,
  OWNED_KINDS,
  PACKAGE_NAME,
  PROVIDER,
  SHORT_DESCRIPTION,
  SUGGESTED_NAMESPACE,
} from "./olm-bundle-listing.ts";
import { DEFAULT_IMAGE_REGISTRY, IMAGE_REPOSITORIES, releaseImageReferences } from "./release.ts";

/** Where the images live: the generator's one image setting. */
export { DEFAULT_IMAGE_REGISTRY };

export interface BundleRelease {
  /** Operator version (semver, no leading v). */
  version: string;
  /** Registry and path prefix of the operator, bundle, control-plane and proxy images. */
  registry: string;
  /** Name of the CSV this one replaces in the upgrade graph. */
  replaces?: string;
  /** Versions this release may be installed over directly (semver range). */
  skipRange?: string;
}

export const csvName = (version: string): string => `${PACKAGE_NAME}.v${version}`;

/** The images a release names: the operator, its bundle, and the mesh it installs by default. */
export function releaseImages(release: BundleRelease): Record<string, string> {
  const base = release.registry.replace(/\/+$/, "");
  const operator = releaseImageReferences(base, release.version).operator;
  const mesh = releaseImageReferences(base, exampleMeshVersion());
  return {
    operator,
    bundle: `${base}/${IMAGE_REPOSITORIES.operatorBundle}:v${release.version}`,
    "control-plane": mesh.controlPlane,
    init: mesh.init,
    cni: mesh.cni,
    proxy: mesh.proxy,
  };
}

const INSTALL_MODES = [
  { type: "OwnNamespace", supported: false },
  { type: "SingleNamespace", supported: false },
  { type: "MultiNamespace", supported: false },
  // Mesh is cluster-scoped and the operator watches every namespace.
  { type: "AllNamespaces", supported: true },
];

export function ownedCrdDescriptions(): Array<Record<string, unknown>> {
  return OWNED_KINDS.map(({ plural, kind, ...listing }) => ({
    name: `${plural}.${GROUP}`,
    version: VERSION,
    kind,
    ...listing,
  }));
}

/** Annotations and spec fields shared by the CSV and the catalog's olm.csv.metadata property. */
export function csvMetadata(release: BundleRelease) {
  const images = releaseImages(release);
  const annotations: Record<string, string> = {
    "alm-examples": JSON.stringify(almExamples(), null, 2),
    capabilities: CAPABILITIES,
    categories: CATEGORIES,
    containerImage: images.operator ?? "",
    description: SHORT_DESCRIPTION,
    repository: LINKS[1]?.url ?? "",
    support: PROVIDER.name,
    "operatorframework.io/suggested-namespace": SUGGESTED_NAMESPACE,
    "operatorframework.io/initialization-resource": JSON.stringify(almExamples()[0]),
    "features.operators.openshift.io/disconnected": "false",
    "features.operators.openshift.io/fips-compliant": "false",
    "features.operators.openshift.io/proxy-aware": "false",
    "features.operators.openshift.io/tls-profiles": "false",
    "features.operators.openshift.io/token-auth-aws": "false",
    "features.operators.openshift.io/token-auth-azure": "false",
    "features.operators.openshift.io/token-auth-gcp": "false",
  };
  if (release.skipRange) annotations["olm.skipRange"] = release.skipRange;
  return {
    annotations,
    labels: {
      "operatorframework.io/arch.amd64": "supported",
      "operatorframework.io/arch.arm64": "supported",
      "operatorframework.io/os.linux": "supported",
    },
    spec: {
      displayName: DISPLAY_NAME,
      description: DESCRIPTION,
      icon: icon(),
      keywords: KEYWORDS,
      maintainers: MAINTAINERS,
      provider: PROVIDER,
      links: LINKS,
      maturity: "alpha",
      minKubeVersion: MIN_KUBE_VERSION,
      installModes: INSTALL_MODES,
      customresourcedefinitions: { owned: ownedCrdDescriptions() },
    },
  };
}

/** The ClusterServiceVersion of a release. */
export function renderClusterServiceVersion(release: BundleRelease): Record<string, unknown> {
  const images = releaseImages(release);
  const meta = csvMetadata(release);
  return {
    apiVersion: "operators.coreos.com/v1alpha1",
    kind: "ClusterServiceVersion",
    metadata: {
      name: csvName(release.version),
      namespace: "placeholder",
      annotations: meta.annotations,
      labels: meta.labels,
    },
    spec: {
      ...meta.spec,
      version: release.version,
      ...(release.replaces ? { replaces: release.replaces } : {}),
      install: {
        strategy: "deployment",
        spec: {
          clusterPermissions: [
            { serviceAccountName: OPERATOR_NAME, rules: policyRules(OPERATOR_CLUSTER_RULES) },
          ],
          permissions: [{ serviceAccountName: OPERATOR_NAME, rules: policyRules(OPERATOR_NAMESPACE_RULES) }],
          deployments: [
            {
              name: OPERATOR_NAME,
              label: { "app.kubernetes.io/name": OPERATOR_NAME, "app.kubernetes.io/part-of": "trellis" },
              spec: operatorDeploymentSpec(images.operator ?? ""),
            },
          ],
        },
      },
      relatedImages: (["operator", "control-plane", "init", "cni", "proxy"] as const).map((name) => ({
        name,
        image: images[name],
      })),
    },
  };
}

/** The group/version/kinds the bundle provides (the catalog's olm.gvk properties). */
export function ownedGvks(): Array<{ group: string; kind: string; version: string }> {
  return KINDS.map((k) => ({ group: GROUP, kind: k.kind, version: VERSION }));
}
