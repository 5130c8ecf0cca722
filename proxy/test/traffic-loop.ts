/**
 * Test fixture: steady traffic through an outbound proxy — HTTP/1.1 over one keep-alive
 * connection and HTTP/2 over one session, each sending its next request as soon as the last
 * one is answered — with every failure kept, with the instant it happened.
 */
import http from "node:http";
import http2 from "node:http2";
import { h1Request, h2Request } from "./test-apps.ts";

export class TrafficLoop {
  ok = 0;
  readonly failures: Array<{ at: number; what: string }> = [];
  private stopped = false;
  private readonly loops: Promise<void>[] = [];
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly session: http2.ClientHttp2Session;

  constructor(
    port: number,
    private readonly authority: string,
  ) {
    this.session = http2.connect(`http://127.0.0.1:${port}`);
    this.session.on("error", () => {});
    this.loops.push(
      this.loop("h1", () => h1Request(port, { host: authority, agent: this.agent })),
      this.loop("h2", () => h2Request(this.session, { authority, path: "/", method: "GET" })),
    );
  }

  /** Failures since `from` (ms since the epoch). */
  failedSince(from: number): string[] {
    return this.failures.filter((f) => f.at >= from).map((f) => f.what);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
    this.session.close();
    this.agent.destroy();
  }

  private async loop(name: string, send: () => Promise<{ status: number; body: string }>): Promise<void> {
    while (!this.stopped) {
      const res = await send().catch((e: Error) => ({ status: 0, body: e.message }));
      if (res.status === 200) this.ok++;
      else {
        this.failures.push({
          at: Date.now(),
          what: `${name} ${this.authority} ${res.status} ${res.body.slice(0, 80)}`,
        });
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
