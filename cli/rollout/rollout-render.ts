// `rollout status`'s view: the summary line, the proxies on the new version, a row per step
// (workloads done, state, analysis countdown) and the operator's last figures. Pure.
import { counted } from "../../api/index.ts";
import { PLAIN, renderTable, type Style } from "../output.ts";
import type { RolloutProgress } from "./rollout-progress.ts";

export function renderRolloutProgress(p: RolloutProgress, style: Style = PLAIN): string {
  const head = `Mesh ${p.mesh}: ${p.summary}`;
  const waiting = [
    p.awaitingApproval
      ? `${style.warn("Awaiting approval")}: upgrade plan ${p.awaitingApproval.id}: ${p.awaitingApproval.summary} (kubectl trellis upgrade approve --plan ${p.awaitingApproval.id})\n`
      : "",
    p.repair ? `${style.warn("Repair")}: ${p.repair}\n` : "",
  ].join("");
  if (p.steps.length === 0) return `${head}\n${waiting}`;
  const paint =
    p.state === "RolledBack" || p.state === "Halted" ? style.bad : p.active ? style.warn : style.ok;
  const out = [paint(head), `Proxies up to date: ${p.proxies}`];
  const rows = p.steps.map((s) => {
    let state = s.state;
    if (s.name === p.step && p.analysisLeftSeconds !== undefined) state += `, ${p.analysisLeftSeconds}s left`;
    if (s.name === p.step && p.restartDeadlineLeftSeconds !== undefined)
      state += `, deadline in ${p.restartDeadlineLeftSeconds}s`;
    return [s.name, String(s.workloads), `${s.done}/${s.workloads}`, state];
  });
  out.push(renderTable(["STEP", "WORKLOADS", "DONE", "STATE"], rows).trimEnd());
  if (p.message) out.push(`${p.state === "Analysing" ? "Gate" : "Operator"}: ${p.message}`);
  const counts = [
    p.blockedWorkloads ? `${p.blockedWorkloads} blocked` : "",
    p.skippedWorkloads ? `${p.skippedWorkloads} skipped` : "",
    p.pendingPods ? `${counted(p.pendingPods, "pod")} pending` : "",
  ].filter(Boolean);
  if (counts.length > 0) {
    out.push(`Held back: ${counts.join(", ")}`);
    for (const h of p.held ?? []) out.push(`  ${h.workload} (${h.reason}): ${h.message}`);
  }
  return `${out.join("\n")}\n${waiting}`;
}
