// `trellis validate FILE...`: checks Trellis objects in YAML files offline, with the same schema
// the CRDs publish and the same checks the operator makes. Exit status 1 when anything is wrong.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { validateCertificateSpec, validateMeshSpec, validateServiceProfileSpec } from "../api/index.ts";
import { checkCertificateSpec } from "./certificates/spec-checks.ts";
import { checkServiceProfileSpec } from "./profiles/route-checks.ts";

type Checker = (spec: unknown) => string[];

const CHECKERS: Record<string, Checker> = {
  Mesh: (spec) => validateMeshSpec(spec).errors,
  ServiceProfile: (spec) => {
    const r = validateServiceProfileSpec(spec);
    return r.ok ? checkServiceProfileSpec(r.value) : r.errors;
  },
  Certificate: (spec) => {
    const r = validateCertificateSpec(spec);
    return r.ok ? checkCertificateSpec(r.value) : r.errors;
  },
};

export function runValidate(files: string[]): number {
  let failures = 0;
  for (const file of files) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
      const obj = doc.toJS() as {
        apiVersion?: string;
        kind?: string;
        metadata?: { name?: string };
        spec?: unknown;
      } | null;
      if (!obj?.apiVersion?.startsWith("trellis.dev/")) continue;
      const check = obj.kind ? CHECKERS[obj.kind] : undefined;
      const problems = check ? check(obj.spec) : [`unknown kind ${obj.kind}`];
      const name = `${file}: ${obj.kind}/${obj.metadata?.name ?? "?"}`;
      if (problems.length === 0) process.stdout.write(`${name}: valid\n`);
      for (const p of problems) process.stderr.write(`${name}: ${p}\n`);
      if (problems.length > 0) failures++;
    }
  }
  return failures > 0 ? 1 : 0;
}
