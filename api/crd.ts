// Turns a kind definition (TypeBox schemas) into its CustomResourceDefinition: the structural
// openAPIV3Schema, status subresource, printer columns, short names and the "trellis" category.
// crds/*.yaml are generated from this (hack/generate.ts) and a test fails when they are stale.
import { stringify } from "yaml";
import { CertificateKind } from "./certificate.ts";
import type { KindDefinition } from "./common-schema.ts";
import { GROUP, VERSION } from "./group.ts";
import { MeshKind } from "./mesh.ts";
import { ServiceProfileKind } from "./service-profile.ts";

export const KINDS: KindDefinition[] = [MeshKind, ServiceProfileKind, CertificateKind];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The JSON Schema without TypeBox's symbols, and with `anyOf` of literals turned into `enum`. */
export function toStructural(schema: unknown): Json {
  const plain = JSON.parse(JSON.stringify(schema)) as Json;
  return completeDefaults(rewrite(plain));
}

type JsonObject = { [k: string]: Json };
const isObject = (v: Json | undefined): v is JsonObject =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * An object's `default: {}` becomes the object with its properties' defaults filled in, as the
 * API server would default it, so that CEL rules on that object hold for the default itself.
 */
function completeDefaults(node: Json): Json {
  if (Array.isArray(node)) return node.map(completeDefaults);
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === "properties" && isObject(v) ? mapValues(v, completeDefaults) : completeDefaults(v);
  }
  if (isObject(out.default) && isObject(out.properties)) out.default = defaulted(out, out.default);
  return out;
}

function defaulted(schema: JsonObject, value: JsonObject): JsonObject {
  const result: JsonObject = { ...value };
  const props = isObject(schema.properties) ? schema.properties : {};
  for (const [name, prop] of Object.entries(props)) {
    if (!isObject(prop)) continue;
    if (result[name] === undefined && prop.default !== undefined) result[name] = prop.default;
    const current = result[name];
    if (isObject(current) && isObject(prop.properties)) result[name] = defaulted(prop, current);
  }
  return result;
}

function rewrite(node: Json): Json {
  if (Array.isArray(node)) return node.map(rewrite);
  if (node === null || typeof node !== "object") return node;
  const out: { [k: string]: Json } = {};
  const anyOf = node.anyOf;
  if (Array.isArray(anyOf) && anyOf.every((s) => isConst(s))) {
    const values = anyOf.map((s) => (s as { const: Json }).const);
    out.type = typeof values[0] === "number" ? "number" : "string";
    out.enum = values;
    for (const [k, v] of Object.entries(node)) if (k !== "anyOf") out[k] = rewrite(v);
    return out;
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "const") {
      out.enum = [v];
    } else if (k === "patternProperties") {
      // TypeBox writes Record<string, T> as patternProperties; structural schemas want additionalProperties.
      out.additionalProperties = rewrite(Object.values(v as { [k: string]: Json })[0] ?? {});
    } else if (k === "required") {
      // A field with a default is not required of the user: the API server fills it in.
      const props = (node.properties ?? {}) as { [k: string]: { default?: Json } };
      const required = (v as string[]).filter((name) => props[name]?.default === undefined);
      if (required.length > 0) out.required = required;
    } else {
      out[k] = k === "properties" ? mapValues(v, rewrite) : rewrite(v);
    }
  }
  return out;
}

function isConst(s: Json): boolean {
  return s !== null && typeof s === "object" && !Array.isArray(s) && "const" in s;
}

function mapValues(v: Json, f: (x: Json) => Json): Json {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, f(x)]));
}

export function customResourceDefinition(def: KindDefinition): Json {
  const spec = toStructural(def.spec) as { [k: string]: Json };
  if (def.specValidations) spec["x-kubernetes-validations"] = def.specValidations as unknown as Json;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: `${def.plural}.${GROUP}`,
      labels: { "app.kubernetes.io/part-of": "trellis" },
    },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ["trellis"],
      },
      scope: def.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: def.printerColumns as unknown as Json,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: def.description,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec,
                status: toStructural(def.status),
              },
            },
          },
        },
      ],
    },
  };
}

/** The YAML of each CRD file in crds/, keyed by file name. */
export function renderCrdFiles(): Map<string, string> {
  const header = "# Generated by `npm run generate` from api/*.ts. Do not edit.\n";
  return new Map(
    KINDS.map((k) => [
      `${GROUP}_${k.plural}.yaml`,
      header + stringify(customResourceDefinition(k), { lineWidth: 0 }),
    ]),
  );
}
