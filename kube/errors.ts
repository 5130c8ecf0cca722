// The error vocabulary of reconcilers: a PermanentError says "retrying will not help until the
// object changes" (bad spec, missing reference the user must create), so the controller logs it
// and waits for the next change; every other error is transient and requeued with back-off.
// Owns that classification; does not own API errors (see rest-client.ts) or their retry policy.

export class PermanentError extends Error {
  override readonly name = "PermanentError";
  /** CamelCase reason, suitable for a condition or an Event. */
  readonly reason: string;

  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

export function isPermanentError(err: unknown): err is PermanentError {
  return err instanceof PermanentError;
}

/** A message for logs and conditions, whatever was thrown. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
