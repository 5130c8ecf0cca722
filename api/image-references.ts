// Where Trellis's images live and what they are called: the one mapping from a registry and a
// version (a Mesh's spec.version, its proxy version, the operator's own version) to image
// references. The operator (control-plane Deployments, OLM bundle, install manifests), the
// injector (proxy sidecars) and hack/build-images.ts (the images themselves) all read it here,
// so an image is always built under the name a Mesh will ask for.
export const DEFAULT_IMAGE_REGISTRY = "localhost/trellis";

/** Repository names under the registry, one per image. */
export const IMAGE_REPOSITORIES = {
  operator: "operator",
  operatorBundle: "operator-bundle",
  controlPlane: "controlplane",
  proxy: "proxy",
  init: "init",
  cni: "cni",
} as const;

export interface MeshImages {
  controlPlane: string;
  /** trellis-init, the capture rules installer: released with the control plane (the injector renders its flags). */
  init: string;
  /** trellis-cni: the node plugin's installer and the meshed pods' validator (Mesh capture mode CNI). */
  cni: string;
  proxy: string;
}

export interface ReleaseImages extends MeshImages {
  operator: string;
}

const trimmed = (registry: string) => registry.replace(/\/+$/, "");

/** An image tag for a semantic version: build metadata's "+" is not allowed in tags, "_" stands in. */
export const imageTag = (version: string): string => version.replace(/\+/g, "_");

/** The proxy's repository: spec.proxy.image when set, else <registry>/proxy. */
export function proxyRepository(registry: string, image?: string): string {
  return image ?? `${trimmed(registry)}/${IMAGE_REPOSITORIES.proxy}`;
}

/**
 * Image references for a mesh version: <registry>/controlplane:<version>, <registry>/init:<version>,
 * <registry>/cni:<version> and <registry>/proxy:<proxy version>.
 */
export function meshImages(
  registry: string,
  version: string,
  proxy?: { image?: string; version?: string },
): MeshImages {
  return {
    controlPlane: `${trimmed(registry)}/${IMAGE_REPOSITORIES.controlPlane}:${imageTag(version)}`,
    init: `${trimmed(registry)}/${IMAGE_REPOSITORIES.init}:${imageTag(version)}`,
    cni: `${trimmed(registry)}/${IMAGE_REPOSITORIES.cni}:${imageTag(version)}`,
    proxy: `${proxyRepository(registry, proxy?.image)}:${imageTag(proxy?.version ?? version)}`,
  };
}

/** Every image of a release: the operator and the control plane at `version`, the proxy at `proxyVersion`. */
export function releaseImageReferences(
  registry: string,
  version: string,
  proxyVersion = version,
): ReleaseImages {
  return {
    operator: `${trimmed(registry)}/${IMAGE_REPOSITORIES.operator}:${imageTag(version)}`,
    ...meshImages(registry, version, { version: proxyVersion }),
  };
}
