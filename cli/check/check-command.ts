// `check [--pre] [--proxies]`: reads the cluster once (check-facts.ts), runs the pure checks
// (checks.ts) and prints them; exit status 1 when any check failed.
import { OPERATOR_VERSION } from "../../operator/release.ts";
import type { CommandSpec } from "../command-line.ts";
import { formatOf, renderData, styleFor } from "../output.ts";
import { EXIT } from "../usage-error.ts";
import { gatherFacts } from "./check-facts.ts";
import { renderCheckReport } from "./check-render.ts";
import { runChecks } from "./checks.ts";

export const checkCommand: CommandSpec = {
  path: ["check"],
  summary: "check that the cluster, the operator, each Mesh and (--proxies) the data plane are healthy",
  description:
    "Each check prints one line: ✓ fine, ‼ a warning, × a failure with a hint that says what to do.\nExit status 1 when any check failed.",
  flags: {
    pre: { type: "boolean", description: "check the cluster before installing Trellis (version, access)" },
    proxies: {
      type: "boolean",
      description: "also check the data plane: proxy versions, pods without a proxy, proxies' trust",
    },
  },
  examples: ["check", "check --proxies", "check --pre", "check -o json"],
  async run(inv) {
    const pre = inv.flags.pre === true;
    const proxies = inv.flags.proxies === true;
    const facts = await gatherFacts(inv.cluster(), { cliVersion: OPERATOR_VERSION, proxies, pre });
    const report = runChecks(facts, { pre, proxies });
    const format = formatOf(inv.flags);
    inv.io.out(
      format === "table"
        ? renderCheckReport(report, styleFor(inv.io, inv.flags))
        : renderData(report, format),
    );
    return report.summary.failures > 0 ? EXIT.failed : EXIT.ok;
  },
};
