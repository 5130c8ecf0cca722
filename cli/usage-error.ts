// Bad input on the command line (an unknown flag, a version that is not semver, a file that is
// not a Mesh): one line on stderr and exit 2, never a stack trace.
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
