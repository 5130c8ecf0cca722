// A real Operator Lifecycle Manager on the local cluster: OLM's CRDs applied server-side, the
// `olm` and `catalog` operators as host processes, catalogs served by `opm serve` on loopback
// behind a grpc CatalogSource. The one thing KWOK cannot do, running the bundle-unpack Job's
// container, is done here with the same command that container runs: for every unpack Job OLM
// creates, `opm alpha bundle extract` fills the Job's ConfigMap from the bundle directory.
// Nothing else about OLM is stubbed. Does not know about Trellis beyond bundle directories.
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { freePort, type LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { type ManagedProcess, ProcessGroup } from "../cluster/process-group.ts";
import { type OlmBinaries, olmBinaries } from "./olm-binaries.ts";

const execFileAsync = promisify(execFile);
export const OLM_NAMESPACE = "olm";

interface JobList {
  items: Array<{
    metadata: { name: string };
    spec: {
      template: { spec: { initContainers?: Array<{ image: string }>; containers: Array<{ image: string }> } };
    };
  }>;
}

export class OlmHarness {
  private readonly group = new ProcessGroup();
  private readonly catalogs = new Map<number, ManagedProcess>();
  /** Bundle image → bundle directory, for the unpack Jobs. */
  private readonly bundles = new Map<string, string>();
  private readonly extracted = new Set<string>();
  private watching = true;
  private watchLoop: Promise<void> = Promise.resolve();
  /** `opm alpha bundle extract` runs: "<job> ← <dir> (<ms> ms)". */
  readonly extractions: string[] = [];
  readonly errors: string[] = [];

  private constructor(
    readonly cluster: LocalCluster,
    readonly bins: OlmBinaries,
  ) {}

  static async start(cluster: LocalCluster): Promise<OlmHarness> {
    const olm = new OlmHarness(cluster, olmBinaries());
    cluster.kubectl(["create", "namespace", OLM_NAMESPACE]);
    const crds = readdirSync(olm.bins.crds)
      .filter((f) => f.startsWith("operators.coreos.com_") && f.endsWith(".yaml"))
      .flatMap((f) => ["-f", join(olm.bins.crds, f)]);
    cluster.kubectl(["apply", "--server-side", ...crds]);
    cluster.kubectl([
      "wait",
      "--for=condition=Established",
      "--timeout=60s",
      "crd",
      "catalogsources.operators.coreos.com",
      "clusterserviceversions.operators.coreos.com",
      "installplans.operators.coreos.com",
      "operatorgroups.operators.coreos.com",
      "subscriptions.operators.coreos.com",
    ]);
    const env = { ...process.env, KUBECONFIG: cluster.kubeconfigPath };
    olm.group.start({
      name: "olm",
      command: olm.bins.olm,
      args: ["--namespace", OLM_NAMESPACE, "--writeStatusName", "", "--writePackageServerStatusName", ""],
      logFile: join(cluster.dir, "olm.log"),
      env,
    });
    olm.group.start({
      name: "catalog",
      command: olm.bins.catalog,
      args: ["--kubeconfig", cluster.kubeconfigPath, "--namespace", OLM_NAMESPACE],
      logFile: join(cluster.dir, "catalog-operator.log"),
      env,
    });
    olm.watchLoop = olm.extractBundles();
    return olm;
  }

  /** The bundle directory OLM will find behind `image` (the catalog's olm.bundle image). */
  addBundle(image: string, dir: string): void {
    this.bundles.set(image, dir);
  }

  /** Serves a file-based catalog with `opm serve` on loopback; resolves with its port once it accepts connections. */
  async serveCatalog(dir: string): Promise<number> {
    const port = await freePort();
    const proc = this.group.start({
      name: `opm-serve-${port}`,
      command: this.bins.opm,
      args: [
        "serve",
        dir,
        "-p",
        String(port),
        "--cache-dir",
        join(this.cluster.dir, `opm-cache-${port}`),
        "--cache-enforce-integrity=false",
        "--pprof-addr",
        `127.0.0.1:${await freePort()}`,
        "-t",
        join(this.cluster.dir, `opm-serve-${port}.termination`),
      ],
      logFile: join(this.cluster.dir, `opm-serve-${port}.log`),
    });
    this.catalogs.set(port, proc);
    await waitFor(
      async () => {
        if (proc.exitCode() !== undefined) throw new Error(`opm serve exited (${proc.exitCode()})`);
        return await canConnect(port);
      },
      30_000,
      `opm serve on 127.0.0.1:${port}`,
    );
    return port;
  }

  async stopCatalog(port: number): Promise<void> {
    const proc = this.catalogs.get(port);
    if (proc) await this.group.stopProcess(proc);
  }

  /** Fills the ConfigMap of every bundle-unpack Job, as the Job's `extract` container would. */
  private async extractBundles(): Promise<void> {
    while (this.watching) {
      try {
        const out = await execFileAsync(this.cluster.binaries.kubectl, [
          "--kubeconfig",
          this.cluster.kubeconfigPath,
          "-n",
          OLM_NAMESPACE,
          "get",
          "jobs",
          "-o",
          "json",
        ]);
        for (const job of (JSON.parse(out.stdout) as JobList).items) {
          const name = job.metadata.name;
          if (this.extracted.has(name)) continue;
          const spec = job.spec.template.spec;
          const images = [...(spec.initContainers ?? []), ...spec.containers].map((c) => c.image);
          const image = images.find((i) => this.bundles.has(i));
          const dir = image ? this.bundles.get(image) : undefined;
          if (!dir) continue;
          this.extracted.add(name);
          const started = Date.now();
          await execFileAsync(this.bins.opm, [
            "alpha",
            "bundle",
            "extract",
            "-k",
            this.cluster.kubeconfigPath,
            "-m",
            `${dir}/`,
            "-n",
            OLM_NAMESPACE,
            "-c",
            name,
            "-z",
          ]);
          this.extractions.push(`${name} ← ${dir} (${Date.now() - started} ms)`);
        }
      } catch (err) {
        this.errors.push(err instanceof Error ? err.message : String(err));
      }
      await sleep(300);
    }
  }

  async stop(): Promise<void> {
    this.watching = false;
    await this.watchLoop;
    await this.group.stop();
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
