// Kubernetes label selectors (matchLabels and matchExpressions) as a predicate, the way the API
// server evaluates them. An empty selector selects everything; an absent one is the caller's call.

export interface LabelSelectorLike {
  matchLabels?: Record<string, string> | undefined;
  matchExpressions?: Array<{ key: string; operator: string; values?: string[] | undefined }> | undefined;
}

export function selects(selector: LabelSelectorLike, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(l, e.key);
    const value = l[e.key] ?? "";
    switch (e.operator) {
      case "In":
        if (!has || !(e.values ?? []).includes(value)) return false;
        break;
      case "NotIn":
        if (has && (e.values ?? []).includes(value)) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}
