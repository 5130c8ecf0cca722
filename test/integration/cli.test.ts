// kubectl trellis against the real local cluster, one cluster for every command: the operator
// (with leader election) and the injector as real processes, a meshed mix of workloads on KWOK
// (Deployments, a StatefulSet, a DaemonSet, a bare pod, an opted-out Deployment, a host-network
// pod). Golden outputs (tables and JSON) for a healthy mesh, a mesh mid-rollout and a degraded
// one; `upgrade plan` checked against what the operator then restarts in each step; every
// failure's exit status; `kubectl trellis version` through the real kubectl with the plugin on
// PATH. Goldens regenerate with UPDATE_GOLDEN=1; times, ages, hashes and pod-name suffixes are
// masked (normalise()).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { runCli } from "../../cli/main.ts";
import type { UpgradePlan } from "../../cli/upgrade/upgrade-plan.ts";
import pkg from "../../package.json" with { type: "json" };
import { repoRoot } from "../cluster/binaries.ts";
import { writeKubeconfig } from "../cluster/cluster-pki.ts";
import { freePort, LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { ProcessGroup } from "../cluster/process-group.ts";
import { assertGolden } from "../golden.ts";
import { installCrds, type OperatorProcess, startInjector, startOperator } from "../operator-process.ts";
import { prometheusValue, startPrometheus, startProxiedApp } from "../proxy-process.ts";

const execFileAsync = promisify(execFile);
const V = pkg.version; // the mesh and proxy version installed
const GOLDEN = join(repoRoot, "test/integration/testdata/cli");

/** Masks what changes from run to run: times, ages, fingerprints, pod-name suffixes, measured seconds. */
export function normalise(text: string): string {
  return text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, "<time>")
    .replace(/\b[0-9a-f]{64}\b/g, "<sha256>")
    .replace(/held by [^,\s]+, renewed \d+s ago/g, "held by <holder>, renewed <age> ago")
    .replace(
      /\b([a-z][a-z0-9-]*?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}\b/g,
      "$1-<hash>",
    )
    .replace(/\b(agent)-[bcdfghjklmnpqrstvwxz2456789]{5}\b/g, "$1-<hash>")
    .replace(/\d+s left/g, "<n>s left")
    .replace(/deadline in \d+s/g, "deadline in <n>s")
    .replace(/for \d+[smh]\b/g, "for <age>")
    .replace(/(about |~)\d+(\.\d+)?[smh]\b/g, "$1<t>")
    .replace(
      /start in [\d.]+s here \(median of \d+ meshed pods\)/g,
      "start in <t>s here (median of <n> meshed pods)",
    )
    .replace(
      /"(estimateSeconds|seconds|podStartSeconds|analysisLeftSeconds|restartDeadlineLeftSeconds)": [\d.]+/g,
      '"$1": "<n>"',
    )
    .replace(/"summary": "(.*); about <t>"/g, '"summary": "$1; about <t>"');
}

interface Run {
  code: number;
  out: string;
  err: string;
}

describe("kubectl trellis on a real cluster", { timeout: 600_000 }, () => {
  let cluster: LocalCluster;
  let operator: OperatorProcess;
  const group = new ProcessGroup();
  let env: NodeJS.ProcessEnv;

  /** The command line in this process, as the plugin runs it. */
  async function cli(...argv: string[]): Promise<Run> {
    return cliOn(false, argv);
  }
  async function cliOn(isTTY: boolean, argv: string[]): Promise<Run> {
    let out = "";
    let err = "";
    const code = await runCli(
      argv,
      { out: (t) => (out += t), err: (t) => (err += t), isTTY, env },
      "kubectl trellis",
    );
    return { code, out, err };
  }
  const golden = (name: string, text: string) => assertGolden(join(GOLDEN, name), normalise(text));
  const mesh = () =>
    JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])) as {
      status?: {
        rollout?: { state?: string; step?: number; toVersion?: string };
        proxies?: { summary?: string };
        upgradePlan?: { id?: string; state?: string; summary?: string };
        controlPlane?: { version?: string; targetVersion?: string };
        phase?: string;
      };
    };
  const patchMesh = (patch: unknown) =>
    cluster.kubectl(["patch", "mesh", "default", "--type=merge", "-p", JSON.stringify(patch)]);

  before(async () => {
    cluster = await LocalCluster.start({ nodes: 3 });
    env = { KUBECONFIG: cluster.kubeconfigPath, HOME: cluster.dir, PATH: process.env.PATH };
    await installCrds(cluster);
    const port = await freePort();
    operator = await startOperator(cluster, [`--injector-url=https://127.0.0.1:${port}/inject`]);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Mesh
metadata: { name: default }
spec:
  version: ${V}
  upgrade: { canary: { percent: 20 }, waves: [50, 100], maxConcurrentRestarts: 10, analysis: { interval: 2s }, stepDeadline: 60s, onBlocked: Skip }
`,
    );
    await cluster.kubectlAsync(["wait", "--for=condition=Ready", "--timeout=90s", "mesh/default"]);
    await startInjector(cluster, group, port);
    for (const ns of ["shop", "bank"]) {
      cluster.kubectl(["create", "namespace", ns]);
      cluster.kubectl(["annotate", "namespace", ns, "trellis.dev/inject=enabled"]);
    }
    await new Promise((r) => setTimeout(r, 1500)); // the injector's namespace watch
    cluster.kubectl(["apply", "-f", "-"], WORKLOADS);
    await waitFor(async () => mesh().status?.proxies?.summary === "15/15", 90_000, "15 injected pods").catch(
      (e: Error) => {
        throw new Error(`${e.message}: ${cluster.kubectl(["get", "pods", "-A", "--show-labels"])}`);
      },
    );
    // Paused once it runs: the rollout skips it (a template patch would fire on unpause).
    cluster.kubectl(["-n", "bank", "rollout", "pause", "deployment/batch"]);
    await waitFor(async () => (await cli("check", "--proxies")).code === 0, 60_000, "a healthy check");
  });
  after(async () => {
    await group.stop();
    await operator?.stop();
    await cluster?.stop();
  });

  it("kubectl trellis version runs through the real kubectl with the plugin on PATH", async () => {
    const bin = join(cluster.dir, "plugin-bin");
    mkdirSync(bin);
    symlinkSync(join(repoRoot, "bin", "kubectl-trellis"), join(bin, "kubectl-trellis"));
    const pathEnv = {
      ...process.env,
      KUBECONFIG: cluster.kubeconfigPath,
      PATH: `${bin}:${process.env.PATH}`,
    };
    const { stdout } = await execFileAsync(cluster.binaries.kubectl, ["trellis", "version"], {
      env: pathEnv,
    });
    assert.match(
      stdout,
      new RegExp(
        `^Client: +trellis ${V}\\nKubernetes: +v1\\.\\d+\\.\\d+\\nOperator: +${V}\\nMesh default: control plane ${V}, proxies ${V} \\(15/15 up to date\\)\\n$`,
      ),
    );
    const plugins = await execFileAsync(cluster.binaries.kubectl, ["plugin", "list"], { env: pathEnv }).catch(
      (e: { stdout: string }) => e,
    );
    assert.match(plugins.stdout, /kubectl-trellis/);
    const help = await execFileAsync(cluster.binaries.kubectl, ["trellis", "upgrade", "plan", "--help"], {
      env: pathEnv,
    });
    assert.match(help.stdout, /Usage: kubectl trellis upgrade plan \[flags\]/);
  });

  it("checks a healthy mesh: every check passes, exit 0", async () => {
    const table = await cli("check", "--proxies");
    assert.equal(table.code, 0, table.out + table.err);
    golden("check-healthy.txt", table.out);
    const json = await cli("check", "--proxies", "-o", "json");
    golden("check-healthy.json", json.out);
    assert.equal(JSON.parse(json.out).summary.failures, 0);
    golden("rollout-status-none.txt", (await cli("rollout", "status")).out);
    // Before an installation: the version, the user's access, and (here) Trellis already there.
    const pre = await cli("check", "--pre");
    assert.equal(pre.code, 0, pre.out);
    golden("check-pre.txt", pre.out);
    // Certificates print readable dates, not <invalid>.
    const certs = cluster.kubectl(["get", "certificates", "-A", "-o", "wide"]);
    assert.doesNotMatch(certs, /<invalid>/);
    assert.match(
      certs,
      /trellis-identity-issuer\s+Issuer\s+True\s+\S+\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\s+\d{4}-/,
    );
  });

  it("plans a proxy rollout, waits for its approval, and the operator restarts exactly the workloads the plan lists, step by step", async () => {
    patchMesh({ spec: { upgrade: { approval: "Manual" } } });
    const table = await cli("upgrade", "plan", "--proxy-version", "0.2.0");
    assert.equal(table.code, 0, table.err);
    golden("plan-proxy.txt", table.out);
    const json = await cli("upgrade", "plan", "--proxy-version", "0.2.0", "-o", "json");
    golden("plan-proxy.json", json.out);
    const plan = JSON.parse(json.out) as UpgradePlan;
    assert.deepEqual(
      plan.proxies.steps.map((s) => s.workloads.length),
      [2, 2, 3],
      "20% of the 7 restartable workloads, then up to 50% and 100%",
    );
    // When each step started, as status.rollout says while the rollout runs.
    const stepStarts = new Map<number, string>();
    let watching = true;
    const recordSteps = (async () => {
      while (watching) {
        const r = JSON.parse(await cluster.kubectlAsync(["get", "mesh", "default", "-o", "json"])).status
          ?.rollout;
        if (r?.toVersion === "0.2.0" && r.stepStartedAt && !stepStarts.has(r.step))
          stepStarts.set(r.step, r.stepStartedAt);
        await new Promise((done) => setTimeout(done, 100));
      }
    })();
    patchMesh({ spec: { proxy: { version: "0.2.0" } } });
    // The operator publishes the same plan (the same id) and waits; nothing restarts meanwhile.
    await waitFor(
      async () => mesh().status?.upgradePlan?.state === "AwaitingApproval",
      30_000,
      "the plan to wait for approval",
    );
    assert.equal(mesh().status?.upgradePlan?.id, plan.approval.planId);
    assert.match(cluster.kubectl(["get", "mesh", "default"]), /\sAwaitingApproval\s/);
    golden("check-awaiting-approval.txt", (await cli("check")).out);
    golden("rollout-status-awaiting-approval.txt", (await cli("rollout", "status")).out);
    const wrong = await cli("upgrade", "approve", "--plan", "000000000000");
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /the plan waiting is [0-9a-f]{12}, not 000000000000: it changed since/);
    assert.equal(mesh().status?.rollout?.toVersion, undefined, "no rollout started");
    assert.equal(
      cluster
        .kubectl([
          "get",
          "deployments",
          "-A",
          "-o",
          "jsonpath={.items[*].spec.template.metadata.annotations.trellis\\.dev/proxy-version}",
        ])
        .trim(),
      "",
      "no template patched",
    );
    const approve = await cli("upgrade", "approve", "--plan", plan.approval.planId ?? "");
    assert.equal(approve.code, 0, approve.err);
    assert.match(
      approve.out,
      new RegExp(
        `^Mesh default: upgrade plan ${plan.approval.planId} approved: proxies 0\\.1\\.0 → 0\\.2\\.0: 7 workloads in 3 steps \\(2, 2, 3\\), 2 skipped\n`,
      ),
    );
    await waitFor(async () => mesh().status?.rollout?.toVersion === "0.2.0", 30_000, "the rollout to start");
    // Followed live, as on a terminal: the view is redrawn in place until the rollout ends.
    const watched = await cliOn(true, ["rollout", "status", "--watch", "--interval", "0.5", "--no-color"]);
    watching = false;
    await recordSteps;
    assert.equal(watched.code, 0, watched.err);
    assert.match(watched.out.replaceAll("\u001b", "ESC"), /ESC\[\d+AESC\[J/, "redrawn in place");
    assert.match(watched.out, /canary\s+2\s+\d\/2\s+(restarting|analysing)/);
    assert.match(
      watched.out,
      /Mesh default: proxy rollout 0\.1\.0 → 0\.2\.0 complete\n[\s\S]*wave 2\s+3\s+3\/3\s+passed\nOperator: all 7 workloads on 0\.2\.0; [^\n]*\nHeld back: 2 skipped, 1 pod pending\n( {2}\S+ \((Paused|DisruptionBudget|BarePod)\): [^\n]+\n){3}$/,
    );
    assert.equal(mesh().status?.rollout?.state, "Complete");
    // Each workload's template says when it was restarted (trellis.dev/restarted-at): in which step.
    assert.deepEqual([...stepStarts.keys()].sort(), [0, 1, 2], "every step seen starting");
    const stepAt = (at: string) =>
      Math.max(...[...stepStarts].filter(([, start]) => start <= at).map(([step]) => step));
    const restarted = new Map<number, string[]>();
    for (const kind of ["deployments", "statefulsets", "daemonsets"]) {
      const out = cluster.kubectl([
        "get",
        kind,
        "-A",
        "-o",
        `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {.spec.template.metadata.annotations.trellis\\.dev/restarted-at}{'\\n'}{end}`,
      ]);
      for (const line of out.trim().split("\n")) {
        const [name, at] = line.split(" ");
        if (!at || !name || name.startsWith("trellis-system/")) continue;
        const k =
          kind === "deployments" ? "Deployment" : kind === "statefulsets" ? "StatefulSet" : "DaemonSet";
        const step = stepAt(at);
        restarted.set(step, [...(restarted.get(step) ?? []), `${k}/${name}`].sort());
      }
    }
    const actual = [...restarted.entries()].sort(([a], [b]) => a - b).map(([, w]) => w);
    const planned = plan.proxies.steps
      .map((s) => s.workloads.map((w) => `${w.kind}/${w.namespace}/${w.name}`).sort())
      .filter((s) => s.length > 0);
    assert.deepEqual(actual, planned);
    assert.equal(mesh().status?.upgradePlan, undefined, "nothing waits once it all started");
    assert.equal((await cli("upgrade", "approve")).code, 1, "nothing to approve");
    patchMesh({ spec: { upgrade: { approval: "Automatic" } } });
  });

  it("shows a mesh mid-rollout: the step, the countdown, the gate; pause, resume and abort", async () => {
    patchMesh({ spec: { proxy: { version: "0.2.1" }, upgrade: { analysis: { interval: "10m" } } } });
    await waitFor(async () => mesh().status?.rollout?.state === "Analysing", 60_000, "the canary analysing");
    const status = await cli("rollout", "status");
    assert.equal(status.code, 0, status.err);
    golden("rollout-status-analysing.txt", status.out);
    golden("rollout-status-analysing.json", (await cli("rollout", "status", "-o", "json")).out);
    const check = await cli("check", "--proxies");
    assert.equal(check.code, 0, check.out);
    golden("check-mid-rollout.txt", check.out);
    const pause = await cli("rollout", "pause");
    assert.equal(pause.code, 0, pause.err);
    assert.equal(
      pause.out,
      `Mesh default patched: kubectl patch mesh default --type=merge -p '{"spec":{"upgrade":{"paused":true}}}'\n`,
    );
    await waitFor(async () => mesh().status?.rollout?.state === "Paused", 30_000, "paused");
    const paused = await cli("check");
    assert.match(
      paused.out,
      /‼ proxy rollout 0\.2\.0 → 0\.2\.1, canary paused\n {6}hint: kubectl trellis rollout resume/,
    );
    assert.equal((await cli("rollout", "resume")).code, 0);
    await waitFor(async () => mesh().status?.rollout?.state === "Analysing", 30_000, "analysing again");
    const abort = await cli("rollout", "abort");
    assert.equal(abort.code, 0, abort.err);
    await waitFor(async () => mesh().status?.rollout?.state === "Complete", 60_000, "reverted");
    assert.equal(mesh().status?.rollout?.toVersion, "0.2.0");
    const again = await cli("rollout", "abort");
    assert.deepEqual(
      [again.code, again.err],
      [1, "kubectl trellis rollout abort: no proxy rollout in progress to abort\n"],
    );
    patchMesh({ spec: { upgrade: { analysis: { interval: "2s" } } } });
  });

  it("stat: golden metrics of a known traffic pattern through real proxies, from a real Prometheus", async (t) => {
    // shop/web's two pods are KWOK pods (no process runs them); two real proxies on loopback, in
    // front of applications failing 10 of every 100 requests, stand for their sidecars, and
    // Prometheus labels their series with those pods' names as Kubernetes discovery would.
    const webPods = cluster
      .kubectl(["-n", "shop", "get", "pods", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"])
      .split(" ");
    assert.equal(webPods.length, 2);
    const proxies = [
      await startProxiedApp(group, cluster.dir, "web-0", 0.1),
      await startProxiedApp(group, cluster.dir, "web-1", 0.1),
    ];
    const prom = await startPrometheus(
      group,
      cluster.dir,
      proxies.map((p, i) => ({ admin: p.admin, labels: { namespace: "shop", pod: webPods[i] as string } })),
    );
    let sent = 0;
    const started = Date.now();
    const traffic = setInterval(() => {
      for (const p of proxies) {
        sent++;
        void fetch(`http://127.0.0.1:${p.inbound}/`)
          .then((r) => r.arrayBuffer())
          .catch(() => {});
      }
    }, 50);
    try {
      // 20 s of steady traffic, all of it scraped.
      await waitFor(async () => Date.now() - started > 20_000, 60_000, "20 s of traffic", 1000);
      await waitFor(
        async () => (await prometheusValue(prom, "count(request_total)")) >= 4,
        30_000,
        "scrapes",
      );
      const statWeb = (...more: string[]) =>
        cli("stat", "shop/web", "--prometheus-url", `http://127.0.0.1:${prom}`, "--window", "10s", ...more);
      const r = await statWeb("-o", "json");
      assert.equal(r.code, 0, r.err);
      const rate = (sent * 1000) / (Date.now() - started);
      const rows = JSON.parse(r.out).rows as Array<{
        workload: string;
        direction: string;
        meshedPods: number;
        totalPods: number;
        figures: {
          successRate: number;
          rps: number;
          requests: number;
          p50Ms: number;
          p99Ms: number;
          mtlsShare: number;
        };
      }>;
      const inbound = rows.find((x) => x.direction === "inbound");
      assert.equal(inbound?.workload, "deployment/web");
      assert.deepEqual([inbound?.meshedPods, inbound?.totalPods], [2, 2]);
      const f = inbound?.figures;
      t.diagnostic(`sent ${rate.toFixed(1)}/s, 10% failing; stat: ${JSON.stringify(f)}`);
      assert.ok(f && Math.abs(f.successRate - 0.9) < 0.03, `success rate ${f?.successRate} ≈ 0.90`);
      assert.ok(
        f && Math.abs(f.rps - rate) / rate < 0.25,
        `${f?.rps} requests/s ≈ the ${rate.toFixed(1)} sent`,
      );
      assert.equal(f?.mtlsShare, 0, "plaintext to the inbound proxy");
      assert.ok(f && f.p50Ms > 0 && f.p50Ms <= f.p99Ms && f.p99Ms < 1000, JSON.stringify(f));
      assert.equal(rows.find((x) => x.direction === "outbound")?.figures.requests, 0);
      const table = await statWeb();
      assert.match(
        table.out,
        /^NAMESPACE\s+WORKLOAD\s+DIRECTION\s+MESHED\s+SUCCESS\s+RPS\s+REQUESTS\s+P50\s+P95\s+P99\s+MTLS\n/,
      );
      assert.match(
        table.out,
        /\nshop\s+deployment\/web\s+inbound\s+2\/2\s+(8[7-9]|9[0-3])\.\d\d%\s+[\d.]+\s+\d+\s+[\d.]+ms/,
      );
      assert.match(table.out, new RegExp(`from Prometheus http://127\\.0\\.0\\.1:${prom}, window 10s`));
    } finally {
      clearInterval(traffic);
    }
  });

  it("refuses what the operator would refuse, and bad input, with the documented exit status", async () => {
    const skip = await cli("upgrade", "plan", "--version", "0.3.0");
    assert.equal(skip.code, 1, skip.out);
    golden("plan-refused.txt", skip.out);
    const cases: Array<[string[], number, RegExp]> = [
      [
        ["upgrade", "plan", "--proxy-version", "latest"],
        2,
        /--proxy-version "latest" is not a semantic version/,
      ],
      [["upgrade", "plan"], 2, /say what changes/],
      [["upgrade", "plan", "--bogus"], 2, /unknown flag --bogus/],
      [["upgrade", "plan", "-f", join(repoRoot, "package.json")], 2, /holds no Mesh/],
      [["upgrade", "plan", "-f", "/nonexistent.yaml"], 2, /cannot read \/nonexistent\.yaml: ENOENT/],
      [["stat", "a/b/c"], 2, /is not namespace or namespace\/workload/],
      [["stat", "--window", "soon"], 2, /is not a duration/],
      [["rollout", "status", "--mesh", "nope"], 1, /Mesh "nope" does not exist/],
    ];
    const notMesh = join(cluster.dir, "certificate.yaml");
    writeFileSync(
      notMesh,
      "apiVersion: trellis.dev/v1alpha1\nkind: Certificate\nmetadata: { name: x }\nspec: {}\n",
    );
    cases.push([
      ["upgrade", "plan", "-f", notMesh],
      2,
      /holds no Mesh \(apiVersion trellis\.dev\/v1alpha1, kind Mesh\)/,
    ]);
    for (const [argv, code, message] of cases) {
      const r = await cli(...argv);
      assert.equal(r.code, code, `${argv.join(" ")}: ${r.err}`);
      assert.match(r.err, message, argv.join(" "));
      assert.equal(r.err.trim().split("\n").length, 1, `one line: ${r.err}`);
      assert.doesNotMatch(r.err, /\n\s+at /, "no stack trace");
    }
  });

  it("says in one line when no cluster is reachable or the user may not read pods", async () => {
    const closed = join(cluster.dir, "closed.kubeconfig");
    writeKubeconfig(closed, `https://127.0.0.1:${await freePort()}`, cluster.pki.caCert, {
      name: "admin",
      certPath: cluster.pki.adminCert,
      keyPath: cluster.pki.adminKey,
    });
    const down = await cli("check", "--kubeconfig", closed);
    assert.equal(down.code, 1);
    assert.match(
      down.err,
      /^kubectl trellis check: no cluster reachable \(context "[^"]+", https:\/\/127\.0\.0\.1:\d+\): ECONNREFUSED\n$/,
    );
    // A user who may read Meshes but not pods.
    cluster.kubectl(["create", "serviceaccount", "viewer", "-n", "default"]);
    cluster.kubectl([
      "create",
      "clusterrole",
      "mesh-viewer",
      "--verb=get,list",
      "--resource=meshes.trellis.dev",
    ]);
    cluster.kubectl([
      "create",
      "clusterrolebinding",
      "mesh-viewer",
      "--clusterrole=mesh-viewer",
      "--serviceaccount=default:viewer",
    ]);
    const token = cluster.kubectl(["create", "token", "viewer", "-n", "default"]).trim();
    const limited = join(cluster.dir, "viewer.kubeconfig");
    writeFileSync(
      limited,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          { name: "local", cluster: { server: cluster.server, "certificate-authority": cluster.pki.caCert } },
        ],
        users: [{ name: "viewer", user: { token } }],
        contexts: [{ name: "viewer", context: { cluster: "local", user: "viewer" } }],
        "current-context": "viewer",
      }),
    );
    const denied = await cli("upgrade", "plan", "--proxy-version", "0.2.1", "--kubeconfig", limited);
    assert.equal(denied.code, 1, denied.out);
    assert.equal(
      denied.err,
      `kubectl trellis upgrade plan: forbidden: user "viewer" may not list pods (context "viewer", ${cluster.server}) (kubectl auth can-i list pods)\n`,
    );
  });

  it("with approval Manual, a new control-plane version waits for its plan's approval, then deploys beside the old", async () => {
    patchMesh({ spec: { version: "0.2.0", upgrade: { approval: "Manual" } } });
    await waitFor(async () => mesh().status?.upgradePlan?.state === "AwaitingApproval", 30_000, "the plan");
    assert.equal(mesh().status?.upgradePlan?.summary, "control plane 0.1.0 → 0.2.0");
    await waitFor(async () => mesh().status?.phase === "AwaitingApproval", 30_000, "the phase");
    const revisions = () =>
      cluster.kubectl([
        "-n",
        "trellis-system",
        "get",
        "deployments",
        "-o",
        "jsonpath={.items[*].metadata.labels.trellis\\.dev/revision}",
      ]);
    assert.doesNotMatch(revisions(), /v0-2-0/, "no candidate revision before the approval");
    const approve = await cli("upgrade", "approve");
    assert.equal(approve.code, 0, approve.err);
    await waitFor(async () => revisions().includes("v0-2-0"), 60_000, "the candidate revision");
    await waitFor(
      async () => mesh().status?.controlPlane?.version === "0.2.0",
      90_000,
      "the upgrade to finish",
    );
    patchMesh({ spec: { upgrade: { approval: "Automatic" } } });
  });

  it("checks a degraded mesh: a control-plane pod not ready, a certificate a day from expiry, a pod without a proxy, a proxy outside the skew policy", async () => {
    // A control-plane pod whose container stopped being ready.
    const identityPod = cluster
      .kubectl([
        "-n",
        "trellis-system",
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/component=identity,app.kubernetes.io/version=0.2.0",
        "-o",
        "name",
      ])
      .trim()
      .split("\n")[0] as string;
    cluster.kubectl([
      "-n",
      "trellis-system",
      "set",
      "image",
      identityPod,
      "identity=localhost/never-ready:1",
    ]);
    // KWOK sets a pod with that image Ready again never; its current status says not ready.
    cluster.kubectl([
      "-n",
      "trellis-system",
      "patch",
      identityPod,
      "--subresource=status",
      "-p",
      '{"status":{"conditions":[{"type":"Ready","status":"False","reason":"ContainersNotReady"}]}}',
    ]);
    // A serving certificate that lives 30 hours.
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: trellis.dev/v1alpha1
kind: Certificate
metadata: { name: short-lived, namespace: trellis-system }
spec: { type: Serving, secretName: short-lived-tls, duration: 30h, issuerRef: { name: trellis-identity-issuer }, dnsNames: [short.example] }
`,
    );
    // Pods that started before their namespace was meshed, and a proxy two minor releases ahead.
    // With repair: Report the operator reports them and restarts nothing (with Restart it would
    // close the gap while the check looks: test/integration/data-plane-repair.test.ts).
    patchMesh({ spec: { injection: { repair: "Report" } } });
    cluster.kubectl(["create", "namespace", "late"]);
    cluster.kubectl(["-n", "late", "create", "deployment", "early", "--image=localhost/app:1"]);
    await cluster.kubectlAsync(["-n", "late", "rollout", "status", "deployment/early", "--timeout=60s"]);
    cluster.kubectl(["annotate", "namespace", "late", "trellis.dev/inject=enabled"]);
    cluster.kubectl(
      ["apply", "-f", "-"],
      `apiVersion: v1
kind: Pod
metadata: { name: skewed, namespace: shop, annotations: { trellis.dev/proxy-version: "0.4.0" } }
spec: { containers: [{ name: app, image: localhost/app:1 }] }
`,
    );
    await waitFor(
      async () => {
        const r = await cli("check", "--proxies");
        return (
          r.out.includes("identity 0/1") &&
          r.out.includes("serving trellis-system/short-lived expires in 30h") &&
          r.out.includes("0.4.0 ×1") &&
          r.out.includes("late/early") &&
          r.out.includes("not Ready") &&
          // The operator's own count (the Mesh's DataPlaneIncomplete), once it has seen both.
          r.out.includes("1 pod without a proxy, 1 proxy outside the skew policy")
        );
      },
      90_000,
      "the degraded mesh",
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}:\n${(await cli("check", "--proxies")).out}`);
    });
    const table = await cli("check", "--proxies");
    assert.equal(table.code, 1);
    golden("check-degraded.txt", table.out);
    golden("check-degraded.json", (await cli("check", "--proxies", "-o", "json")).out);
  });

  it("rotate-anchor asks the operator for a rotation, and refuses a second one while it runs", async () => {
    const before = JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])).status.trustAnchor;
    assert.equal(before.rotationPhase, "Stable");
    const r = await cli("rotate-anchor");
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.out,
      /^Mesh default: rotation requested \(kubectl patch mesh default --type=merge -p '\{"metadata":\{"annotations":\{"trellis\.dev\/rotate-trust-anchor":"[^"]+"\}\}\}'\)\n$/,
    );
    await waitFor(
      async () =>
        JSON.parse(cluster.kubectl(["get", "mesh", "default", "-o", "json"])).status.trustAnchor
          .rotationPhase !== "Stable",
      60_000,
      "the rotation to start",
    );
    const again = await cli("rotate-anchor");
    assert.equal(again.code, 1);
    assert.match(
      again.err,
      /^kubectl trellis rotate-anchor: Mesh default is already rotating its anchor \(phase \w+\)\n$/,
    );
  });
});

/** A workload of `kind` whose pods run `image`, labelled app=<name>. */
function workload(
  kind: "Deployment" | "StatefulSet" | "DaemonSet",
  namespace: string,
  name: string,
  replicas: number | undefined,
  extra: { annotations?: Record<string, string>; port?: boolean; paused?: boolean } = {},
): string {
  const meta = JSON.stringify({
    labels: { app: name },
    ...(extra.annotations ? { annotations: extra.annotations } : {}),
  });
  const ports = extra.port ? ", ports: [{ containerPort: 8080 }]" : "";
  return `apiVersion: apps/v1
kind: ${kind}
metadata: { name: ${name}, namespace: ${namespace}, labels: { app: ${name} } }
spec:${replicas === undefined ? "" : `\n  replicas: ${replicas}`}${kind === "StatefulSet" ? `\n  serviceName: ${name}` : ""}${extra.paused ? "\n  paused: true" : ""}
  selector: { matchLabels: { app: ${name} } }
  template: { metadata: ${meta}, spec: { containers: [{ name: ${name}, image: localhost/${name}:1${ports} }] } }
`;
}

/**
 * Two meshed namespaces: Deployments (one scaled to zero, one opted out, one paused), a StatefulSet
 * under a PodDisruptionBudget that allows no disruption, a DaemonSet, a bare pod, a host-network pod.
 */
const WORKLOADS = [
  workload("Deployment", "shop", "web", 2, { port: true }),
  workload("Deployment", "shop", "api", 1, { port: true }),
  workload("Deployment", "shop", "cart", 1),
  workload("StatefulSet", "shop", "db", 2),
  workload("Deployment", "shop", "legacy", 1, { annotations: { "trellis.dev/inject": "disabled" } }),
  workload("Deployment", "bank", "ledger", 2),
  workload("Deployment", "bank", "payments", 1),
  workload("Deployment", "bank", "fraud", 1),
  workload("Deployment", "bank", "reports", 0),
  workload("DaemonSet", "bank", "agent", undefined),
  workload("Deployment", "bank", "batch", 1),
  // The StatefulSet's restart takes a pod down; this budget allows none: skipped (onBlocked Skip).
  `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: db, namespace: shop }
spec: { minAvailable: 2, selector: { matchLabels: { app: db } } }
`,
  `apiVersion: v1
kind: Pod
metadata: { name: debug, namespace: shop }
spec: { containers: [{ name: debug, image: localhost/app:1 }] }
`,
  `apiVersion: v1
kind: Pod
metadata: { name: node-exporter, namespace: bank }
spec: { hostNetwork: true, containers: [{ name: exporter, image: localhost/app:1 }] }
`,
].join("---\n");
