// `upgrade plan`'s table: the verdict, the control-plane steps, the proxy rollout's steps (with
// their gates and estimates) and the workloads of each, what is left out, and the estimate.
// Pure; golden-tested.
import { PLAIN, renderTable, type Style } from "../output.ts";
import { roughDuration, type UpgradePlan } from "./upgrade-plan.ts";

export function renderPlan(plan: UpgradePlan, style: Style = PLAIN): string {
  const out: string[] = [];
  const verdict = plan.allowed ? style.ok("allowed") : style.bad("refused");
  out.push(
    `${style.bold(`Upgrade plan for Mesh ${plan.mesh}`)} (a preview: nothing changes)`,
    `Verdict: ${verdict}: ${plan.summary}`,
    "",
  );
  const cp = plan.controlPlane;
  out.push(
    style.bold("Control plane"),
    cp.change
      ? `  ${cp.from} → ${cp.to}: ${plan.allowed ? cp.verdict : `${cp.reason}: ${cp.verdict}`}`
      : `  stays on ${cp.from ?? cp.to}`,
  );
  cp.steps.forEach((s, i) => {
    out.push(`  ${i + 1}. ${s}`);
  });
  out.push("", style.bold("Proxies"));
  const p = plan.proxies;
  if (!p.change) out.push(`  stay on ${p.from}`);
  else {
    out.push(
      `  ${p.from} → ${p.to}: at most ${p.maxConcurrentRestarts} workloads restart at once; a step has ${p.stepDeadline} to restart; on failure: ${p.onFailure}`,
    );
    for (const w of p.warnings) out.push(`  ${style.warn("‼")} ${w}`);
    if (p.steps.length > 0) {
      out.push("");
      const rows = p.steps.map((s) => [
        s.name,
        `${s.percent}%`,
        String(s.workloads.length),
        String(s.pods),
        s.gate,
        `~${roughDuration(s.estimateSeconds)}`,
      ]);
      out.push(indent(renderTable(["STEP", "UPTO", "WORKLOADS", "PODS", "ANALYSIS GATE", "TIME"], rows)));
      const workloads = p.steps.flatMap((s) =>
        s.workloads.map((w) => [s.name, w.kind, `${w.namespace}/${w.name}`, String(w.pods)]),
      );
      if (workloads.length > 0)
        out.push(indent(renderTable(["STEP", "KIND", "WORKLOAD", "PODS"], workloads)));
    }
    if (p.pending.length > 0) {
      out.push(style.bold("  Not restarted by the rollout"));
      out.push(
        indent(
          renderTable(
            ["POD", "OWNER", "WHY"],
            p.pending.map((l) => [`${l.namespace}/${l.name}`, l.kind, l.reason]),
          ),
        ),
      );
    }
  }
  if (p.notMeshed.length > 0) {
    out.push(style.bold("  Without a proxy in meshed namespaces"));
    out.push(
      indent(
        renderTable(
          ["WORKLOAD", "KIND", "WHY"],
          p.notMeshed.map((l) => [`${l.namespace}/${l.name}`, l.kind, l.reason]),
        ),
      ),
    );
  }
  if (plan.allowed && (cp.change || p.change))
    out.push(`Estimate: about ${roughDuration(plan.estimate.seconds)} (${plan.estimate.basis})`);
  return `${out.join("\n").replace(/\n+$/, "")}\n`;
}

function indent(block: string): string {
  return block
    .split("\n")
    .map((l) => (l ? `  ${l}` : l))
    .join("\n");
}
