/**
 * Test fixture: a TCP relay on loopback between a proxy and a control-plane fake, to make the
 * network misbehave in ways a process cannot: connections already open go silent (bytes read
 * and dropped both ways, the TCP connection still up, as behind a middlebox that lost the flow)
 * while new ones are forwarded; or every new connection is closed at once; and the instant of
 * each accepted connection is recorded (to measure reconnection back-off).
 */
import net, { type AddressInfo, type Socket } from "node:net";

interface Pair {
  client: Socket;
  upstream: Socket;
  silent: boolean;
}

export class TcpRelay {
  port = 0;
  /** forward: relay new connections; refuse: accept and close them at once. */
  mode: "forward" | "refuse" = "forward";
  /** When each connection was accepted (ms since the epoch). */
  readonly accepted: number[] = [];
  private readonly pairs = new Set<Pair>();
  /** Every socket still open, silent ones included, so close() ends them all. */
  private readonly sockets = new Set<Socket>();
  private readonly server: net.Server;

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => this.onConnection(client));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Connections open now stop carrying bytes, in both directions, without being closed. */
  silenceOpenConnections(): void {
    for (const p of this.pairs) p.silent = true;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: Socket): void {
    this.accepted.push(Date.now());
    this.track(client);
    if (this.mode === "refuse") {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: "127.0.0.1", port: this.targetPort });
    this.track(upstream);
    const pair: Pair = { client, upstream, silent: false };
    this.pairs.add(pair);
    client.on("data", (d: Buffer) => {
      if (!pair.silent) upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      if (!pair.silent) client.write(d);
    });
    const end = () => {
      this.pairs.delete(pair);
      if (pair.silent) return;
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
  }

  private track(socket: Socket): void {
    socket.on("error", () => {});
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }
}
