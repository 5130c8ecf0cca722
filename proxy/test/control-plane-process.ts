/**
 * Test fixture, parent side: a control-plane fake running as a child process
 * (control-plane-child.ts) that a test can kill (SIGKILL), freeze (SIGSTOP) and thaw
 * (SIGCONT), and restart on the same port with the state it was given replayed — an outage
 * and a recovery as the proxy sees them. Children are SIGKILLed when the test file ends.
 */
import { type ChildProcess, fork } from "node:child_process";
import type { DiscoveryUpdate } from "../discovery-protocol.ts";
import type { ChildCommand, ChildConfig } from "./control-plane-child.ts";
import type { IdentityMode } from "./control-plane-fakes.ts";
import { exportMeshCa, type MeshCa } from "./mesh-pki.ts";

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
});

const entry = new URL("./control-plane-child.ts", import.meta.url).pathname;

export class ControlPlaneProcess {
  port = 0;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** Commands that make up its state, replayed after a restart. */
  private readonly replay: ChildCommand[] = [];

  private constructor(private readonly config: ChildConfig) {}

  static async start(
    kind: ChildConfig["kind"],
    ca: MeshCa,
    o: { tokens?: Record<string, string>; lifetimeMs?: number } = {},
  ): Promise<ControlPlaneProcess> {
    const p = new ControlPlaneProcess({
      kind,
      port: 0,
      ca: exportMeshCa(ca),
      tokens: Object.entries(o.tokens ?? {}),
      ...(o.lifetimeMs !== undefined ? { lifetimeMs: o.lifetimeMs } : {}),
    });
    await p.spawn();
    return p;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** Destination: the state of an authority (kept, and replayed after a restart). */
  set(authority: string, update: Partial<DiscoveryUpdate>): Promise<void> {
    return this.command({ op: "set", authority, update }, true);
  }

  /** Destination: new watches of `authority` get no answer at all. */
  hold(authority: string): Promise<void> {
    return this.command({ op: "hold", authority }, true);
  }

  /** Identity: how certify requests are answered from now on (those of `spiffeId` only, if given). */
  mode(mode: IdentityMode, spiffeId?: string): Promise<void> {
    return this.command({ op: "mode", mode, ...(spiffeId ? { spiffeId } : {}) }, true);
  }

  /** Identity: the lifetime of the leaves issued to `spiffeId`. */
  lifetime(spiffeId: string, lifetimeMs: number): Promise<void> {
    return this.command({ op: "lifetime", spiffeId, lifetimeMs }, true);
  }

  /** Identity: when each certify request arrived, by SPIFFE ID (this life of the process only). */
  async requests(): Promise<Record<string, number[]>> {
    const reply = await this.ask({ op: "requests" });
    return (reply.requests ?? {}) as Record<string, number[]>;
  }

  kill(): Promise<void> {
    this.signal("SIGKILL");
    return this.exited;
  }

  freeze(): void {
    this.signal("SIGSTOP");
  }

  thaw(): void {
    this.signal("SIGCONT");
  }

  /** Starts it again on the same port, with its state replayed. */
  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
    for (const c of this.replay) await this.command(c, false);
  }

  private signal(sig: NodeJS.Signals): void {
    const c = this.child;
    if (c?.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, sig);
  }

  private async spawn(): Promise<void> {
    const child = fork(entry, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, FAKE_CONTROL_PLANE: JSON.stringify({ ...this.config, port: this.port }) },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    live.add(child);
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once("exit", () => {
        live.delete(child);
        resolve();
      }),
    );
    this.port = await new Promise<number>((resolve, reject) => {
      child.once("message", (m: { port?: number }) =>
        m.port ? resolve(m.port) : reject(new Error("no port")),
      );
      void this.exited.then(() => reject(new Error(`control-plane fake (${this.config.kind}) exited`)));
    });
  }

  private async command(c: ChildCommand, keep: boolean): Promise<void> {
    if (keep) this.replay.push(c);
    await this.ask(c);
  }

  private ask(c: ChildCommand): Promise<{ requests?: unknown }> {
    const child = this.child;
    if (!child?.connected) return Promise.resolve({});
    return new Promise((resolve) => {
      child.once("message", (m: { requests?: unknown }) => resolve(m));
      child.send(c);
    });
  }
}
