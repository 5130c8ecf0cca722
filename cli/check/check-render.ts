// `check`'s table: one line per check under its group, ✓ / ‼ / ×, the items behind a failure
// and a hint, then the counts. Pure; golden-tested.
import { counted } from "../../api/index.ts";
import { PLAIN, type Style } from "../output.ts";
import type { CheckReport, CheckStatus } from "./checks.ts";

const MARK: Record<CheckStatus, string> = { ok: "✓", warn: "‼", fail: "×" };

export function renderCheckReport(report: CheckReport, style: Style = PLAIN): string {
  const lines: string[] = [];
  let group = "";
  for (const c of report.checks) {
    if (c.group !== group) {
      if (group) lines.push("");
      group = c.group;
      lines.push(style.bold(group));
    }
    const paint = c.status === "ok" ? style.ok : c.status === "warn" ? style.warn : style.bad;
    lines.push(`  ${paint(MARK[c.status])} ${c.message}`);
    for (const d of c.details ?? []) lines.push(`      ${d}`);
    if (c.hint && c.status !== "ok") lines.push(style.dim(`      hint: ${c.hint}`));
  }
  const { ok, warnings, failures } = report.summary;
  const verdict = failures > 0 ? style.bad("×") : warnings > 0 ? style.warn("‼") : style.ok("✓");
  lines.push("", `${verdict} ${ok} ok, ${counted(warnings, "warning")}, ${failures} failed`);
  return `${lines.join("\n")}\n`;
}
