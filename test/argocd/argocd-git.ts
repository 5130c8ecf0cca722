// Git for the GitOps tests, the way a team uses it: a `git daemon` on loopback serving bare
// repositories (push enabled), and a working clone in which a test writes files, commits,
// reverts and pushes. Argo CD's repo-server clones from git://127.0.0.1:<port>/<name>.git.
// Does not own: what goes into the repositories.
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { freePort, waitFor } from "../cluster/local-cluster.ts";
import type { ProcessGroup } from "../cluster/process-group.ts";

const gitEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_AUTHOR_NAME: "Trellis Test",
  GIT_AUTHOR_EMAIL: "test@trellis.invalid",
  GIT_COMMITTER_NAME: "Trellis Test",
  GIT_COMMITTER_EMAIL: "test@trellis.invalid",
};

function git(cwd: string, args: string[]): string {
  try {
    return execFileSync("git", args, {
      cwd,
      env: gitEnv,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`git ${args.join(" ")} failed: ${e.stderr ?? e.message}`);
  }
}

export class GitServer {
  private constructor(
    readonly baseDir: string,
    readonly port: number,
  ) {}

  /** Starts `git daemon` in `group`, serving every repository under `baseDir`. */
  static async start(group: ProcessGroup, baseDir: string, logFile: string): Promise<GitServer> {
    mkdirSync(baseDir, { recursive: true });
    const port = await freePort();
    const daemon = group.start({
      name: "git-daemon",
      command: "git",
      args: [
        "daemon",
        "--export-all",
        "--reuseaddr",
        "--informative-errors",
        "--enable=receive-pack",
        `--base-path=${baseDir}`,
        "--listen=127.0.0.1",
        `--port=${port}`,
        baseDir,
      ],
      logFile,
      env: gitEnv,
    });
    const server = new GitServer(baseDir, port);
    mkdirSync(join(baseDir, "probe.git"));
    git(join(baseDir, "probe.git"), ["init", "--bare", "-q"]);
    await waitFor(
      async () => {
        if (daemon.exitCode() !== undefined) throw new Error(`git daemon exited; see ${logFile}`);
        try {
          git(baseDir, ["ls-remote", server.url("probe")]);
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      "git daemon to serve",
    );
    return server;
  }

  url(repo: string): string {
    return `git://127.0.0.1:${this.port}/${repo}.git`;
  }

  /** Creates an empty bare repository `name` and a working clone of it in `workDir`. */
  createRepo(name: string, workDir: string): GitRepo {
    const bare = join(this.baseDir, `${name}.git`);
    mkdirSync(bare, { recursive: true });
    git(bare, ["init", "--bare", "-q", "-b", "main"]);
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
    git(workDir, ["init", "-q", "-b", "main"]);
    git(workDir, ["remote", "add", "origin", this.url(name)]);
    return new GitRepo(workDir, this.url(name));
  }
}

export class GitRepo {
  constructor(
    readonly dir: string,
    readonly url: string,
  ) {}

  write(path: string, content: string): void {
    const file = join(this.dir, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
  }

  remove(path: string): void {
    git(this.dir, ["rm", "-q", "-r", path]);
  }

  /** Commits everything in the working tree; returns the new commit's SHA. */
  commit(message: string): string {
    git(this.dir, ["add", "-A"]);
    git(this.dir, ["commit", "-q", "-m", message]);
    return this.head();
  }

  /** Reverts `sha` with a new commit; returns that commit's SHA. */
  revert(sha: string): string {
    git(this.dir, ["revert", "--no-edit", sha]);
    return this.head();
  }

  push(): void {
    git(this.dir, ["push", "-q", "origin", "main"]);
  }

  head(): string {
    return git(this.dir, ["rev-parse", "HEAD"]).trim();
  }
}
