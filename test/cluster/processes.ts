// Process liveness as the harness needs it, read from /proc.
import { readFileSync } from "node:fs";

/**
 * Whether `pid` is a running process. A zombie counts as gone: it has exited, and a shim or a
 * container reparented to a PID 1 that does not reap (as in some CI sandboxes) stays one forever.
 */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
