// Label selectors (metav1.LabelSelector) matched the way the API server and controllers match
// them: matchLabels AND every matchExpression (In, NotIn, Exists, DoesNotExist; NotIn and
// DoesNotExist also match a missing key). An empty selector ({}) matches everything; an absent
// one (null/undefined) matches nothing, as for a PodDisruptionBudget, a Service's selector or a
// webhook's objectSelector read through LabelSelectorAsSelector. Callers for which absent
// means "all" (an optional filter in a spec) say so with `absent: "all"`. Pure; owns only the
// matching rules.

export interface LabelSelectorRequirement {
  key: string;
  operator: string;
  values?: string[] | undefined;
}

export interface LabelSelector {
  matchLabels?: Record<string, string> | undefined;
  matchExpressions?: LabelSelectorRequirement[] | undefined;
}

/** Whether `labels` satisfy `selector`. An unknown operator matches nothing (as the API server refuses it). */
export function matchesLabelSelector(
  selector: LabelSelector | null | undefined,
  labels: Record<string, string> | undefined,
  options: { absent?: "none" | "all" } = {},
): boolean {
  if (selector === null || selector === undefined) return options.absent === "all";
  const have = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (have[k] !== v) return false;
  for (const r of selector.matchExpressions ?? []) if (!matchesRequirement(r, have)) return false;
  return true;
}

function matchesRequirement(r: LabelSelectorRequirement, labels: Record<string, string>): boolean {
  const present = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.operator) {
    case "In":
      return present && (r.values ?? []).includes(value as string);
    case "NotIn":
      return !present || !(r.values ?? []).includes(value as string);
    case "Exists":
      return present;
    case "DoesNotExist":
      return !present;
    default:
      return false;
  }
}

/** A selector as `kubectl` prints one (`app=db,tier in (a,b),!legacy`), for messages. */
export function formatLabelSelector(selector: LabelSelector | null | undefined): string {
  if (selector === null || selector === undefined) return "<none>";
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const r of selector.matchExpressions ?? []) {
    const values = `(${(r.values ?? []).join(",")})`;
    if (r.operator === "In") parts.push(`${r.key} in ${values}`);
    else if (r.operator === "NotIn") parts.push(`${r.key} notin ${values}`);
    else if (r.operator === "Exists") parts.push(r.key);
    else if (r.operator === "DoesNotExist") parts.push(`!${r.key}`);
    else parts.push(`${r.key} ${r.operator} ${values}`);
  }
  return parts.length === 0 ? "<all>" : parts.join(",");
}
