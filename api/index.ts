// The public face of api/: the three kinds, their schemas, types, validators and names.
export * from "./certificate.ts";
export * from "./common-schema.ts";
export * from "./counted.ts";
export * from "./crd.ts";
export * from "./data-plane-revision.ts";
export * from "./duration.ts";
export * from "./group.ts";
export * from "./injection-intent.ts";
export * from "./mesh.ts";
export * from "./service-profile.ts";
export * from "./validation.ts";
