// Schema pieces shared by the three kinds: durations, conditions, label selectors, resource
// requirements, references. Each is a TypeBox schema, which is plain JSON Schema (the same
// object the CRD publishes) with a static TypeScript type attached.
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { type Static, type TSchema, Type } from "@sinclair/typebox";
import { DURATION_PATTERN } from "./duration.ts";

export const Duration = (description: string, defaultValue?: string) =>
  Type.String({
    pattern: DURATION_PATTERN,
    maxLength: 32,
    description,
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
  });

export const Condition = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      description: "Type of the condition: Ready, Progressing, Degraded, ...",
    }),
    status: Type.Union([Type.Literal("True"), Type.Literal("False"), Type.Literal("Unknown")]),
    reason: Type.String({ maxLength: 1024, description: "CamelCase reason for the last transition." }),
    message: Type.String({ maxLength: 32768, description: "A sentence a person can act on." }),
    observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
    lastTransitionTime: Type.String({ format: "date-time" }),
  },
  { description: "A standard Kubernetes condition." },
);
export type Condition = Static<typeof Condition>;

export const Conditions = Type.Array(Condition, {
  maxItems: 16,
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
});

const LabelSelectorRequirement = Type.Object({
  key: Type.String({ maxLength: 317 }),
  operator: Type.Union([
    Type.Literal("In"),
    Type.Literal("NotIn"),
    Type.Literal("Exists"),
    Type.Literal("DoesNotExist"),
  ]),
  values: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 64 })),
});

export const LabelSelector = (description: string) =>
  Type.Object(
    {
      matchLabels: Type.Optional(Type.Record(Type.String(), Type.String({ maxLength: 63 }))),
      matchExpressions: Type.Optional(Type.Array(LabelSelectorRequirement, { maxItems: 32 })),
    },
    { description, "x-kubernetes-map-type": "atomic" },
  );
export type LabelSelector = Static<ReturnType<typeof LabelSelector>>;

const Quantity = Type.Unsafe<string | number>({
  "x-kubernetes-int-or-string": true,
  anyOf: [{ type: "integer" }, { type: "string" }],
  pattern:
    "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
});

const ResourceList = Type.Object({ cpu: Type.Optional(Quantity), memory: Type.Optional(Quantity) });

export const Resources = (description: string, defaults?: Static<typeof ResourceRequirements>) =>
  Type.Object(
    { requests: Type.Optional(ResourceList), limits: Type.Optional(ResourceList) },
    { description, ...(defaults ? { default: defaults } : {}) },
  );
const ResourceRequirements = Type.Object({
  requests: Type.Optional(ResourceList),
  limits: Type.Optional(ResourceList),
});
export type ResourceRequirements = Static<typeof ResourceRequirements>;

/** A pod toleration, as in core/v1. */
export const Toleration = Type.Object({
  key: Type.Optional(Type.String({ maxLength: 316 })),
  operator: Type.Optional(Type.Union([Type.Literal("Exists"), Type.Literal("Equal")])),
  value: Type.Optional(Type.String({ maxLength: 63 })),
  effect: Type.Optional(
    Type.Union([Type.Literal("NoSchedule"), Type.Literal("PreferNoSchedule"), Type.Literal("NoExecute")]),
  ),
  tolerationSeconds: Type.Optional(Type.Integer()),
});
export type Toleration = Static<typeof Toleration>;

export const SecretReference = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 253 }),
  namespace: Type.String({ minLength: 1, maxLength: 63 }),
});

/** A semantic version such as 1.4.0 or 1.5.0-rc.1 (no leading "v"). */
export const SemVer = (description: string) =>
  Type.String({
    description,
    maxLength: 64,
    pattern:
      "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(-[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$",
  });

/** Standard object metadata, as @kubernetes/client-node types it. */
export type ObjectMeta = V1ObjectMeta;

export interface KindDefinition<Spec extends TSchema = TSchema, Status extends TSchema = TSchema> {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  scope: "Cluster" | "Namespaced";
  description: string;
  spec: Spec;
  status: Status;
  printerColumns: Array<{
    name: string;
    type: string;
    jsonPath: string;
    description?: string;
    priority?: number;
  }>;
  /** CEL rules on the whole spec (x-kubernetes-validations). */
  specValidations?: Array<{ rule: string; message: string; fieldPath?: string; reason?: string }>;
}
