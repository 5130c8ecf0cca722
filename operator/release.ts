// What this build of the operator is. Image references for a mesh version are defined once, in
// api/image-references.ts (the injector needs them too), and read through here by operator code.
import pkg from "../package.json" with { type: "json" };

export {
  DEFAULT_IMAGE_REGISTRY,
  IMAGE_REPOSITORIES,
  type MeshImages,
  meshImages,
  releaseImageReferences,
} from "../api/image-references.ts";

export const OPERATOR_VERSION = process.env.TRELLIS_OPERATOR_VERSION ?? pkg.version;
