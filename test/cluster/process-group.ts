// A group of child processes started by the local cluster (or any test) and stopped by PID.
//
// Owns: spawning with logs to files, stopping in order (TERM, wait, KILL), and making sure no
// child outlives this process: every child is started under `setpriv --pdeathsig KILL`, so the
// kernel kills it if this process dies without running its handlers (SIGKILL, a crash), and
// SIGINT/SIGTERM/exit handlers stop the group when they do run.
// Does not own: what the processes are or how to tell that they are healthy.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  exitCode(): number | string | undefined;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const live = new Set<ProcessGroup>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Synchronous last resort: SIGKILL whatever is still running.
  process.on("exit", () => {
    for (const group of live) group.killNow();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      void Promise.all([...live].map((g) => g.stop())).finally(() =>
        process.exit(128 + signalNumber(signal)),
      );
    });
  }
}

function signalNumber(signal: "SIGINT" | "SIGTERM" | "SIGHUP"): number {
  return { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 }[signal];
}

const setprivAvailable = existsSync("/usr/bin/setpriv");

export class ProcessGroup {
  private readonly processes: ManagedProcess[] = [];
  private readonly cleanups: Array<() => void> = [];

  constructor() {
    installExitHandlers();
    live.add(this);
  }

  start(options: StartOptions): ManagedProcess {
    const log = createWriteStream(options.logFile, { flags: "a" });
    const [command, args] = setprivAvailable
      ? ["/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", options.command, ...options.args]]
      : [options.command, options.args];
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    let code: number | string | undefined;
    const exited = new Promise<number | string>((resolve) => {
      child.once("exit", (c, s) => {
        code = c ?? s ?? "unknown";
        resolve(code);
      });
      child.once("error", (err) => {
        code = `spawn error: ${err.message}`;
        resolve(code);
      });
    });
    void exited.then(() => log.end());
    const managed: ManagedProcess = {
      name: options.name,
      child,
      logFile: options.logFile,
      exited,
      exitCode: () => code,
    };
    this.processes.push(managed);
    return managed;
  }

  /** Stops one process: SIGTERM, then SIGKILL after the grace period. */
  async stopProcess(p: ManagedProcess, graceMs = 5000): Promise<void> {
    if (p.exitCode() !== undefined || p.child.pid === undefined) return;
    p.child.kill("SIGTERM");
    const killed = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!killed) {
      p.child.kill("SIGKILL");
      await p.exited;
    }
  }

  /** Runs `fn` once every process has stopped (also when stopped by a signal handler). */
  afterStop(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** Stops every process in reverse start order (controllers before the API server before etcd). */
  async stop(graceMs = 5000): Promise<void> {
    if (!live.has(this)) return;
    for (const p of [...this.processes].reverse()) await this.stopProcess(p, graceMs);
    live.delete(this);
    for (const fn of this.cleanups.splice(0)) fn();
  }

  /** SIGKILL every process that is still running; synchronous, for exit handlers. */
  killNow(): void {
    for (const p of this.processes) {
      if (p.exitCode() === undefined) p.child.kill("SIGKILL");
    }
  }

  /** PIDs of the processes still running. */
  pids(): number[] {
    return this.processes
      .filter((p) => p.exitCode() === undefined && p.child.pid)
      .map((p) => p.child.pid as number);
  }

  forget(p: ManagedProcess): void {
    const i = this.processes.indexOf(p);
    if (i >= 0) this.processes.splice(i, 1);
  }
}
