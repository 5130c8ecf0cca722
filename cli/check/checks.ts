// `check` as pure functions over the facts read from the cluster (check-facts.ts): each check
// returns one line — ok, warning or failure — and, when something is wrong, a hint that says what
// to do. Grouped as the output prints them. The exit status is 1 when any check failed.
import type { CheckFacts } from "./check-facts.ts";
import { accessChecks, crdChecks, kubernetesChecks, operatorChecks } from "./cluster-checks.ts";
import { dataPlaneChecks } from "./data-plane-checks.ts";
import { meshChecks } from "./mesh-checks.ts";

export type CheckStatus = "ok" | "warn" | "fail";

export interface CheckResult {
  group: string;
  /** Stable name for scripts (-o json). */
  id: string;
  status: CheckStatus;
  message: string;
  hint?: string;
  /** Items behind a failure (pods, namespaces, certificates), a few at most. */
  details?: string[];
}

export interface CheckReport {
  checks: CheckResult[];
  summary: { ok: number; warnings: number; failures: number };
}

/** The number of items a failure names before it says "and N more". */
export const DETAIL_LIMIT = 5;

export function limitDetails(items: string[]): string[] {
  if (items.length <= DETAIL_LIMIT) return items;
  return [...items.slice(0, DETAIL_LIMIT), `and ${items.length - DETAIL_LIMIT} more`];
}

export function runChecks(facts: CheckFacts, options: { pre: boolean; proxies: boolean }): CheckReport {
  const checks: CheckResult[] = [...kubernetesChecks(facts)];
  if (options.pre) checks.push(...accessChecks(facts));
  checks.push(...crdChecks(facts, options.pre));
  if (!options.pre) {
    checks.push(...operatorChecks(facts));
    checks.push(...meshChecks(facts));
    if (options.proxies) checks.push(...dataPlaneChecks(facts));
  }
  const count = (s: CheckStatus) => checks.filter((c) => c.status === s).length;
  return { checks, summary: { ok: count("ok"), warnings: count("warn"), failures: count("fail") } };
}
