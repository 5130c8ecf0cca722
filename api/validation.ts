// ajv validators compiled from the same schemas the CRDs publish, so the operator (and
// `trellis validate`) judge a spec exactly as the API server's schema does. CEL rules are the
// API server's job; checks no schema can express live in the operator's own validators.
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { CertificateSpec } from "./certificate.ts";
import { toStructural } from "./crd.ts";
import { MeshSpec } from "./mesh.ts";
import { ServiceProfileSpec } from "./service-profile.ts";

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false });
for (const keyword of [
  "x-kubernetes-validations",
  "x-kubernetes-list-type",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-map-type",
  "x-kubernetes-int-or-string",
  "x-kubernetes-preserve-unknown-fields",
]) {
  ajv.addKeyword(keyword);
}
ajv.addFormat("date-time", { validate: (s: string) => !Number.isNaN(Date.parse(s)) });

export interface ValidationResult<T> {
  ok: boolean;
  /** The input with schema defaults filled in (a copy; the input is not changed). */
  value: T;
  /** One line per problem, naming the field: "spec.identity.trustDomain: must match pattern ...". */
  errors: string[];
}

function compile<T>(schema: unknown): (input: unknown) => ValidationResult<T> {
  const validate: ValidateFunction = ajv.compile(toStructural(schema) as object);
  return (input) => {
    const value = structuredClone(input ?? {}) as T;
    const ok = validate(value) as boolean;
    return { ok, value, errors: ok ? [] : (validate.errors ?? []).map(describe) };
  };
}

function describe(e: ErrorObject): string {
  const path = e.instancePath.replace(/^\//, "").replaceAll("/", ".");
  return `spec${path ? `.${path}` : ""}: ${e.message ?? "is invalid"}`;
}

export const validateMeshSpec = compile<MeshSpec>(MeshSpec);
export const validateServiceProfileSpec = compile<ServiceProfileSpec>(ServiceProfileSpec);
export const validateCertificateSpec = compile<CertificateSpec>(CertificateSpec);
