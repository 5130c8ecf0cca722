// Status conditions, as pure functions over a list: set one (keeping lastTransitionTime unless
// the status flips), find one, and ask whether it is True. Owns the shape of a condition that
// every Trellis kind shares (the same fields as metav1.Condition); does not own which
// conditions a kind has or what they mean, which belongs to each controller's status code.

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  /** CamelCase, machine-readable: `CertificateIssued`, `ApplyFailed`. */
  reason: string;
  /** A sentence a person can act on. */
  message: string;
  observedGeneration?: number;
  /** RFC 3339, changes only when `status` flips. */
  lastTransitionTime: string;
}

export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

const CAMEL_CASE = /^[A-Z][A-Za-z0-9]*$/;

/** Whether `reason` is a valid condition reason (CamelCase, starting with a capital letter). */
export function isValidReason(reason: string): boolean {
  return CAMEL_CASE.test(reason);
}

/**
 * Returns a new list in which the condition of `update.type` has the given status, reason, message
 * and observedGeneration. `lastTransitionTime` is `now` for a new condition or one whose status
 * changed, and is kept otherwise. The input list is not modified; order is kept, new types go last.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date = new Date(),
): Condition[] {
  if (!isValidReason(update.reason)) {
    throw new Error(`condition reason ${JSON.stringify(update.reason)} must be CamelCase`);
  }
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message,
    ...(update.observedGeneration === undefined ? {} : { observedGeneration: update.observedGeneration }),
    lastTransitionTime:
      existing && existing.status === update.status ? existing.lastTransitionTime : rfc3339(now),
  };
  if (!existing) return [...list, next];
  return list.map((c) => (c.type === update.type ? next : c));
}

/** Returns the list without the condition of `type`. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/** Whether two condition lists say the same thing, ignoring order (for skipping no-op status writes). */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((c) => {
    const other = right.find((o) => o.type === c.type);
    return (
      other !== undefined &&
      other.status === c.status &&
      other.reason === c.reason &&
      other.message === c.message &&
      other.observedGeneration === c.observedGeneration &&
      other.lastTransitionTime === c.lastTransitionTime
    );
  });
}

/** Kubernetes serialises metav1.Time with second precision. */
function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
