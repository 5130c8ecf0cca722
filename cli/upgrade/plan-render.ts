// `upgrade plan`'s table: the verdict, the control-plane steps, the proxy rollout's steps (with
// their gates and estimates) and the workloads of each, what is left out, and the estimate.
// Pure; golden-tested.
import { counted } from "../../api/index.ts";
import { PLAIN, renderTable, type Style } from "../output.ts";
import { roughDuration, type UpgradePlan } from "./upgrade-plan.ts";

/** A table indented under its section, without its trailing newline. */
const table = (headers: string[], rows: string[][]) =>
  renderTable(headers, rows)
    .trimEnd()
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");

export function renderPlan(plan: UpgradePlan, style: Style = PLAIN): string {
  const verdict = plan.allowed ? style.ok("allowed") : style.bad("refused");
  const out = [
    `${style.bold(`Upgrade plan for Mesh ${plan.mesh}`)} (a preview: nothing changes)`,
    `Verdict: ${verdict}: ${plan.summary}`,
    "",
    style.bold("Control plane"),
  ];
  const cp = plan.controlPlane;
  if (!cp.change) out.push(`  stays on ${cp.from ?? cp.to}`);
  else out.push(`  ${cp.from} → ${cp.to}: ${plan.allowed ? cp.verdict : `${cp.reason}: ${cp.verdict}`}`);
  cp.steps.forEach((s, i) => {
    out.push(`  ${i + 1}. ${s}`);
  });
  out.push("", style.bold("Proxies"));
  const p = plan.proxies;
  if (!p.change) out.push(`  stay on ${p.from}`);
  else {
    out.push(
      `  ${p.from} → ${p.to}: at most ${counted(p.maxConcurrentRestarts, "workload")} ${p.maxConcurrentRestarts === 1 ? "restarts" : "restart"} at once; a step has ${p.stepDeadline} to restart; on failure: ${p.onFailure}`,
    );
    for (const w of p.warnings) out.push(`  ${style.warn("‼")} ${w}`);
    if (p.steps.length > 0) {
      const steps = p.steps.map((s) => [
        s.name,
        `${s.percent}%${s.configuredPercent !== undefined && s.configuredPercent !== s.percent ? ` (${s.configuredPercent}%)` : ""}`,
        String(s.workloads.length),
        String(s.pods),
        s.gate,
        `~${roughDuration(s.estimateSeconds)}`,
      ]);
      out.push("", table(["STEP", "UPTO", "WORKLOADS", "PODS", "ANALYSIS GATE", "TIME"], steps));
      const anyBlocked = p.steps.some((s) => s.workloads.some((w) => w.blocked));
      const workloads = p.steps.flatMap((s) =>
        s.workloads.map((w) => [
          s.name,
          w.kind,
          `${w.namespace}/${w.name}`,
          String(w.pods),
          ...(anyBlocked ? [w.blocked ? style.warn(`blocked: ${w.blocked}`) : ""] : []),
        ]),
      );
      if (p.steps.some((s) => s.workloads.length === 0))
        out.push("  (a step with no new workload passes at once, without an analysis of its own)");
      if (workloads.length > 0)
        out.push(
          "",
          table(
            ["STEP", "KIND", "WORKLOAD", "PODS", ...(anyBlocked ? [`NOW (onBlocked: ${p.onBlocked})`] : [])],
            workloads,
          ),
        );
    }
    if (p.skipped.length > 0) {
      const rows = p.skipped.map((l) => [`${l.namespace}/${l.name}`, l.kind, l.code ?? "", l.reason]);
      out.push("", style.bold("  Skipped by the plan"), table(["WORKLOAD", "KIND", "REASON", "WHY"], rows));
    }
    if (p.pending.length > 0) {
      const rows = p.pending.map((l) => [`${l.namespace}/${l.name}`, l.kind, l.code ?? "", l.reason]);
      out.push(
        "",
        style.bold("  Not restarted: they keep their proxy until they end or are re-created"),
        table(["OWNER", "KIND", "REASON", "WHY"], rows),
      );
    }
  }
  if (p.notMeshed.length > 0) {
    const rows = p.notMeshed.map((l) => [`${l.namespace}/${l.name}`, l.kind, l.reason]);
    out.push(
      "",
      style.bold("  Without a proxy in meshed namespaces"),
      table(["WORKLOAD", "KIND", "WHY"], rows),
    );
  }
  if (plan.allowed && (cp.change || p.change))
    out.push("", `Estimate: about ${roughDuration(plan.estimate.seconds)} (${plan.estimate.basis})`);
  if (plan.approval.planId)
    out.push(
      `Approval: Manual — once the Mesh asks for this, the operator publishes plan ${plan.approval.planId} and waits for: kubectl trellis upgrade approve --plan ${plan.approval.planId}`,
    );
  return `${out.join("\n")}\n`;
}
