// A real Argo CD beside the local cluster: Redis, Argo CD's repo-server and application-
// controller (built from Go modules by hack/build-argocd.sh), and a git daemon, all on loopback
// and stopped by PID. Installs what those processes read from the cluster: Argo CD's CRDs, its
// namespace, ConfigMaps (argocd-cm with Trellis's health checks), the default AppProject and a
// cluster Secret that declares the local API server as the destination.
// Does not own: Applications or git repositories' content (the tests), nor the local cluster.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { cacheRoot, repoRoot } from "../cluster/binaries.ts";
import { freePort, type LocalCluster, waitFor } from "../cluster/local-cluster.ts";
import { type ManagedProcess, ProcessGroup, type StartOptions } from "../cluster/process-group.ts";
import { argocdCm, argocdSupportObjects, clusterSecret, yamlStream } from "./argocd-config.ts";
import { GitServer } from "./argocd-git.ts";

export const ARGOCD_VERSION = process.env.ARGOCD_VERSION ?? "v3.6.1";

export interface ArgoCdBinaries {
  repoServer: string;
  applicationController: string;
  crdDir: string;
  /** git-verify-wrapper.sh and git-ask-pass.sh, which repo-server runs from PATH. */
  scriptsDir: string;
}

/** Argo CD's binaries, built by hack/build-argocd.sh when missing (about 10 min cold). */
export function argocdBinaries(): ArgoCdBinaries {
  const dir = join(cacheRoot, `argocd-${ARGOCD_VERSION}`);
  const bins: ArgoCdBinaries = {
    repoServer: join(dir, "argocd-repo-server"),
    applicationController: join(dir, "argocd-application-controller"),
    crdDir: join(dir, "crds"),
    scriptsDir: join(dir, "bin"),
  };
  if (!existsSync(bins.repoServer) || !existsSync(join(bins.crdDir, "application-crd.yaml"))) {
    execFileSync("bash", [join(repoRoot, "hack/build-argocd.sh")], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, ARGOCD_VERSION, TRELLIS_CACHE: cacheRoot },
    });
  }
  return bins;
}

/** argocd-health: Argo CD's Lua VM over a health.lua (hack/argocd-health), built when missing. */
export function argocdHealthBinary(): string {
  const bin = join(cacheRoot, `argocd-${ARGOCD_VERSION}`, "argocd-health");
  if (!existsSync(bin))
    execFileSync("bash", [join(repoRoot, "hack/build-argocd.sh")], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, ARGOCD_VERSION, TRELLIS_CACHE: cacheRoot },
    });
  return bin;
}

/** The last lines of a process' log, for error messages (the log goes with the cluster folder). */
function logTail(p: ManagedProcess, lines = 8): string {
  if (!existsSync(p.logFile)) return "";
  return readFileSync(p.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Starts a server on fresh loopback ports and waits for `ready`; when the server exits while
 * starting (another process can take a port between freePort() and the bind), starts it again on
 * other ports, up to three times.
 */
async function startOnFreePorts(
  group: ProcessGroup,
  portCount: number,
  options: (ports: number[]) => StartOptions,
  ready: (p: ManagedProcess, ports: number[]) => Promise<void>,
): Promise<{ process: ManagedProcess; ports: number[] }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < portCount; i++) ports.push(await freePort());
    const p = group.start(options(ports));
    try {
      await ready(p, ports);
      return { process: p, ports };
    } catch (err) {
      const exited = p.exitCode() !== undefined;
      if (!exited || attempt >= 3)
        throw new Error(`${(err as Error).message}\n${p.name} log:\n${logTail(p)}`);
      group.forget(p);
    }
  }
}

async function waitForLog(p: ManagedProcess, pattern: RegExp, what: string, timeoutMs = 30_000) {
  await waitFor(
    async () => {
      if (p.exitCode() !== undefined) throw new Error(`${p.name} exited (${p.exitCode()}); see ${p.logFile}`);
      return existsSync(p.logFile) && pattern.test(readFileSync(p.logFile, "utf8"));
    },
    timeoutMs,
    what,
  );
}

/**
 * Waits until the CRDs are Established. (`kubectl wait` fails outright on a CRD that has no
 * conditions yet, which is how a CRD looks for a moment after it is created.)
 */
export async function waitForCrds(cluster: LocalCluster, names: string[], timeoutMs = 30_000): Promise<void> {
  const established = `{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Established")].status}{"\\n"}{end}`;
  await waitFor(
    async () => {
      const out = await cluster.kubectlAsync(["get", "crd", "-o", `jsonpath=${established}`]);
      const ready = new Set(
        out
          .split("\n")
          .filter((l) => l.endsWith("=True"))
          .map((l) => l.slice(0, -5)),
      );
      return names.every((n) => ready.has(n));
    },
    timeoutMs,
    `CRDs ${names.join(", ")} to be Established`,
  );
}

export class ArgoCd {
  private constructor(
    readonly cluster: LocalCluster,
    readonly git: GitServer,
    /** The Application destination.server naming the local cluster. */
    readonly destination: string,
    readonly dir: string,
    private readonly group: ProcessGroup,
    readonly controller: ManagedProcess,
  ) {}

  static async start(cluster: LocalCluster): Promise<ArgoCd> {
    const bins = argocdBinaries();
    const dir = join(cluster.dir, "argocd");
    for (const d of ["tls", "ssh", "gnupg", "repos", "home"]) mkdirSync(join(dir, d), { recursive: true });
    cluster.kubectl(["apply", "--server-side", "-f", bins.crdDir]);
    await waitForCrds(cluster, ["applications.argoproj.io", "appprojects.argoproj.io"]);
    const read = (p: string) => readFileSync(p, "utf8");
    cluster.kubectl(
      ["apply", "-f", "-"],
      yamlStream([
        ...argocdSupportObjects(),
        argocdCm(),
        clusterSecret({
          name: "local",
          server: cluster.server,
          caPem: read(cluster.pki.caCert),
          certPem: read(cluster.pki.adminCert),
          keyPem: read(cluster.pki.adminKey),
        }),
      ]),
    );

    const group = new ProcessGroup();
    try {
      const git = await GitServer.start(group, join(dir, "git"), join(dir, "git-daemon.log"));
      const { ports: redisPorts } = await startOnFreePorts(
        group,
        1,
        ([port]) => ({
          name: "redis-server",
          command: "redis-server",
          args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
          logFile: join(dir, "redis.log"),
        }),
        (p) => waitForLog(p, /Ready to accept connections/, "redis-server to serve"),
      );
      const redis = `127.0.0.1:${redisPorts[0]}`;
      const { ports: repoPorts } = await startOnFreePorts(
        group,
        2,
        ([port, metricsPort]) => ({
          name: "argocd-repo-server",
          command: bins.repoServer,
          args: [
            "--address=127.0.0.1",
            `--port=${port}`,
            "--metrics-address=127.0.0.1",
            `--metrics-port=${metricsPort}`,
            `--redis=${redis}`,
            "--loglevel=info",
          ],
          logFile: join(dir, "repo-server.log"),
          cwd: dir,
          env: {
            ...process.env,
            HOME: join(dir, "home"),
            PATH: `${bins.scriptsDir}:${process.env.PATH ?? ""}`,
            TMPDIR: join(dir, "repos"),
            ARGOCD_GPG_ENABLED: "false",
            ARGOCD_TLS_DATA_PATH: join(dir, "tls"),
            ARGOCD_SSH_DATA_PATH: join(dir, "ssh"),
            ARGOCD_GNUPGHOME: join(dir, "gnupg"),
          },
        }),
        (p) => waitForLog(p, /argocd-repo-server is listening on/, "argocd-repo-server to serve"),
      );
      const { process: controller } = await startOnFreePorts(
        group,
        1,
        ([metricsPort]) => ({
          name: "argocd-application-controller",
          command: bins.applicationController,
          args: [
            `--kubeconfig=${cluster.kubeconfigPath}`,
            "--namespace=argocd",
            `--repo-server=127.0.0.1:${repoPorts[0]}`,
            `--redis=${redis}`,
            `--metrics-port=${metricsPort}`,
            "--status-processors=4",
            "--operation-processors=4",
            // Argo CD 3 keeps each resource's health out of the Application by default; the
            // tests (and `kubectl get application -o yaml` users) read it from there.
            "--persist-resource-health",
            "--loglevel=info",
          ],
          logFile: join(dir, "application-controller.log"),
          cwd: dir,
          env: { ...process.env, HOME: join(dir, "home") },
        }),
        (p, [metricsPort]) =>
          waitFor(
            async () => {
              if (p.exitCode() !== undefined) throw new Error(`${p.name} exited (${p.exitCode()})`);
              try {
                return (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok;
              } catch {
                return false;
              }
            },
            30_000,
            "argocd-application-controller to serve metrics",
          ),
      );
      return new ArgoCd(cluster, git, cluster.server, dir, group, controller);
    } catch (err) {
      await group.stop(2000);
      throw err;
    }
  }

  /** Stops Argo CD's processes, Redis and the git daemon (the cluster is the caller's). */
  async stop(): Promise<void> {
    await this.group.stop(5000);
  }
}
