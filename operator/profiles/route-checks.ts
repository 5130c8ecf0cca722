// What the schema cannot say about a ServiceProfile: every path regex must compile, and must be
// safe to run on every request — no nested quantifiers (catastrophic backtracking such as
// (a+)+) and no backreferences. Each problem names the field.
import { parseDuration, type ServiceProfileSpec } from "../../api/index.ts";

/** Why a regex is unsafe for a proxy's hot path, or undefined when it is fine. */
export function unsafeRegexReason(source: string): string | undefined {
  if (/\\[1-9]|\\k</.test(source)) return "backreferences can backtrack without bound";
  // Track, per open group, whether it contains a quantifier; a quantified group that does is nested.
  const stack: boolean[] = [];
  let quantifiedInside = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === "\\") {
      i++;
      continue;
    }
    if (ch === "[") {
      while (i < source.length && source[i] !== "]") i += source[i] === "\\" ? 2 : 1;
      continue;
    }
    if (ch === "(") {
      stack.push(quantifiedInside);
      quantifiedInside = false;
    } else if (ch === ")") {
      const inner: boolean = quantifiedInside;
      quantifiedInside = stack.pop() ?? false;
      const next = source[i + 1];
      const quantified = next === "*" || next === "+" || next === "{";
      if (quantified && inner) return "nested quantifier can backtrack without bound";
      quantifiedInside ||= inner || quantified;
    } else if (ch === "*" || ch === "+" || ch === "{") {
      quantifiedInside = true;
    }
  }
  return undefined;
}

export function checkServiceProfileSpec(spec: ServiceProfileSpec): string[] {
  const problems: string[] = [];
  spec.routes.forEach((route, i) => {
    const field = `spec.routes[${i}].condition.pathRegex`;
    try {
      new RegExp(`^(?:${route.condition.pathRegex})$`);
    } catch (err) {
      problems.push(`${field}: does not compile: ${(err as Error).message}`);
      return;
    }
    const unsafe = unsafeRegexReason(route.condition.pathRegex);
    if (unsafe) problems.push(`${field}: ${JSON.stringify(route.condition.pathRegex)}: ${unsafe}`);
    if (route.timeout !== undefined && parseDuration(route.timeout) === 0)
      problems.push(`spec.routes[${i}].timeout: must be above 0`);
  });
  return problems;
}
