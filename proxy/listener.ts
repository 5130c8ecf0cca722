/**
 * One listening socket (inbound or outbound): connection limits, protocol detection, mTLS
 * termination on the inbound side, and handing each connection to the HTTP/1.1, HTTP/2 or
 * opaque path with its `ConnectionContext` (TLS status and verified peer identity).
 *
 * Owns: accept, limits, detection timeouts, TLS handshakes. Does not parse HTTP
 * (server-h1.ts, server-h2.ts) or relay bytes (opaque.ts).
 */
import net, { type Socket } from "node:net";
import tls from "node:tls";
import type { HostPort, Limits } from "./config.ts";
import { detect } from "./detect.ts";
import type { ConnectionContext, Direction } from "./handler.ts";
import { peerSpiffeId } from "./peer-certificate.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { H1Server } from "./server-h1.ts";
import type { H2Server } from "./server-h2.ts";
import { expiredSessionCertificate } from "./tls-session-bounds.ts";
import { opaqueAlpn } from "./upstream.ts";

export interface ServerTls {
  readonly generation: number;
  secureOptions(): tls.SecureContextOptions | undefined;
}

export type OpaqueHandler = (socket: Socket, prefix: Buffer) => void | Promise<void>;

export interface ListenerDeps {
  direction: Direction;
  limits: Limits;
  metrics: ProxyMetrics;
  h1: H1Server;
  h2: H2Server;
  /** Inbound: the identity to terminate mTLS with (no options until a leaf is installed). */
  serverTls: ServerTls | undefined;
  /** Inbound: accept connections that are not TLS (non-meshed clients). */
  allowPlaintext: boolean;
  opaque: OpaqueHandler | undefined;
}

export class Listener {
  private readonly server: net.Server;
  private readonly sockets = new Set<Socket>();
  /** Never listens: detection hands it TLS connections; it verifies the client chain. */
  private readonly tlsServer: tls.Server | undefined;
  private tlsGeneration = -1;

  constructor(private readonly deps: ListenerDeps) {
    this.server = net.createServer({ noDelay: true }, (socket) => this.onSocket(socket));
    this.server.on("error", () => {});
    if (deps.serverTls) {
      const { direction, metrics } = deps;
      this.tlsServer = tls.createServer({
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ["h2", "http/1.1", opaqueAlpn],
        handshakeTimeout: deps.limits.detectTimeoutMs,
      });
      this.tlsServer.on("secureConnection", (s: tls.TLSSocket) => this.onSecure(s));
      this.tlsServer.on("tlsClientError", (_err, s: tls.TLSSocket) => {
        metrics.tlsHandshakeFailures.inc([direction, "server"]);
        s.destroy();
      });
    }
  }

  listen(at: HostPort): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: at.host, port: at.port, backlog: 1024 }, () => {
        this.server.off("error", reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  /** Stops accepting; existing connections are left to drain. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  private onSocket(socket: Socket): void {
    const { direction, limits, metrics } = this.deps;
    socket.on("error", () => {});
    if (this.sockets.size >= limits.maxConnections) {
      metrics.tcpRejected.inc([direction, "connection_limit"]);
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    metrics.tcpOpenConnections.add([direction], 1);
    socket.once("close", () => {
      this.sockets.delete(socket);
      metrics.tcpOpenConnections.add([direction], -1);
    });
    void detect(socket, limits.detectTimeoutMs).then((found) => {
      if (!found || socket.destroyed) {
        socket.destroy();
        return;
      }
      if (found.protocol === "tls" && this.deps.serverTls) {
        this.acceptTls(socket, found.prefix);
        return;
      }
      if (this.deps.serverTls && !this.deps.allowPlaintext) {
        metrics.tcpRejected.inc([direction, "plaintext_not_allowed"]);
        socket.destroy();
        return;
      }
      const conn = this.context(socket, "plaintext", undefined);
      const protocol = found.protocol === "tls" ? "opaque" : found.protocol;
      this.dispatch(socket, protocol, conn, found.prefix);
    });
  }

  private context(
    socket: Socket,
    tlsStatus: "mtls" | "plaintext",
    peer: string | undefined,
  ): ConnectionContext {
    this.deps.metrics.tcpOpen.inc([this.deps.direction, tlsStatus, peer ?? ""]);
    return {
      direction: this.deps.direction,
      tls: tlsStatus,
      peerIdentity: peer,
      clientAddress: socket.remoteAddress ?? "",
    };
  }

  private dispatch(
    socket: Socket,
    protocol: string,
    conn: ConnectionContext,
    prefix: Buffer | undefined,
  ): void {
    // Detection and the TLS handshake have their own deadlines; idleness starts here. node:http2
    // reads the socket natively and never refreshes a socket timer, which would destroy every
    // HTTP/2 connection one idle timeout after it was accepted, busy or not: the HTTP/2 server's
    // session timer counts frames instead (server-h2.ts). HTTP/1.1 and opaque relays read in
    // JavaScript, which refreshes the socket timer (the TLS socket's, under mTLS).
    if (protocol === "h2") {
      this.deps.h2.accept(socket, conn, prefix);
      return;
    }
    socket.setTimeout(this.deps.limits.idleTimeoutMs, () => socket.destroy());
    if (protocol === "http/1.1") this.deps.h1.accept(socket, conn, prefix);
    else if (this.deps.opaque) void this.deps.opaque(socket, prefix ?? Buffer.alloc(0));
    else {
      this.deps.metrics.tcpRejected.inc([this.deps.direction, "opaque_not_configured"]);
      socket.destroy();
    }
  }

  /**
   * Terminates mTLS: OpenSSL verifies the client chain against our anchors (rejectUnauthorized),
   * then the client must carry a SPIFFE ID. A renewed leaf or reloaded bundle is swapped in with
   * setSecureContext; connections already open keep the context they started with.
   */
  private acceptTls(socket: Socket, prefix: Buffer): void {
    const { direction, metrics, serverTls } = this.deps;
    const server = this.tlsServer!;
    if (serverTls!.generation !== this.tlsGeneration) {
      const options = serverTls!.secureOptions();
      if (!options) {
        metrics.tcpRejected.inc([direction, "no_identity_yet"]);
        socket.destroy();
        return;
      }
      server.setSecureContext(options);
      this.tlsGeneration = serverTls!.generation;
    }
    socket.unshift(prefix);
    server.emit("connection", socket);
  }

  private onSecure(tlsSocket: tls.TLSSocket): void {
    const { direction, metrics } = this.deps;
    tlsSocket.on("error", () => tlsSocket.destroy());
    const expired = expiredSessionCertificate(tlsSocket);
    if (expired !== undefined) {
      metrics.expiredCertificates.inc([direction, expired]);
      tlsSocket.destroy();
      return;
    }
    const peer = peerSpiffeId(tlsSocket.getPeerCertificate());
    if (peer === undefined) {
      metrics.tlsHandshakeFailures.inc([direction, "no_peer_identity"]);
      tlsSocket.destroy();
      return;
    }
    const conn = this.context(tlsSocket, "mtls", peer);
    const alpn = tlsSocket.alpnProtocol;
    const protocol = alpn === "h2" ? "h2" : alpn === opaqueAlpn ? "opaque" : "http/1.1";
    this.dispatch(tlsSocket, protocol, conn, undefined);
  }
}
