/**
 * One listening socket (inbound or outbound): connection limits, protocol detection, mTLS
 * termination on the inbound side, then the connection policy (connection-policy.ts) decided
 * once per connection, and the connection handed to exactly the path that decision names: the
 * HTTP/1.1 or HTTP/2 server of the stack, the servers that answer 403, the opaque relay, or a
 * close. No byte reaches an application before the decision.
 *
 * Owns: accept, limits, detection, TLS handshakes, applying the admission. Does not parse HTTP
 * (server-h1.ts, server-h2.ts), relay bytes (opaque.ts) or make the policy.
 */
import net, { type Socket } from "node:net";
import tls from "node:tls";
import type { HostPort, Limits, PortSet } from "./config.ts";
import { portSetHas } from "./config.ts";
import {
  type Admission,
  admitConnection,
  type ConnectionFacts,
  type ConnectionProtocol,
  type InboundPolicy,
} from "./connection-policy.ts";
import { detect } from "./detect.ts";
import type { ConnectionContext, Direction } from "./handler.ts";
import { peerSpiffeId } from "./peer-certificate.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { H1Server } from "./server-h1.ts";
import type { H2Server } from "./server-h2.ts";
import { opaqueAlpn } from "./upstream.ts";

export interface ServerTls {
  readonly generation: number;
  secureOptions(): tls.SecureContextOptions | undefined;
}

export type OpaqueHandler = (socket: Socket, prefix: Buffer) => void | Promise<void>;

export interface HttpServers {
  h1: H1Server;
  h2: H2Server;
}

export interface ListenerDeps {
  direction: Direction;
  limits: Limits;
  metrics: ProxyMetrics;
  /** The servers of the stack, for admitted HTTP connections. */
  http: HttpServers;
  /** Inbound: servers that answer every request 403, for HTTP from peers the policy refuses. */
  forbidden: HttpServers | undefined;
  /** Inbound: the identity to terminate mTLS with (no options until a leaf is installed). */
  serverTls: ServerTls | undefined;
  /** Inbound: who may reach the application. Undefined outbound (the application is the client). */
  policy: InboundPolicy | undefined;
  /** The port a connection was meant for, when known (inbound today: the application's port). */
  targetPort: (socket: Socket) => number | undefined;
  /** Target ports whose traffic is opaque TCP: not inspected, relayed (inbound: after mTLS). */
  opaquePorts: PortSet;
  /** Outbound: non-HTTP traffic on any port has a destination (`outbound.opaqueAuthority`). */
  opaqueFallback: boolean;
  opaque: OpaqueHandler | undefined;
}

const badRequest = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";

export class Listener {
  private readonly server: net.Server;
  private readonly sockets = new Set<Socket>();
  /** Never listens: detection hands it TLS connections; it verifies the client chain. */
  private readonly tlsServer: tls.Server | undefined;
  private tlsGeneration = -1;
  /** Connections in their TLS handshake whose target port is opaque, by address 4-tuple. */
  private readonly opaqueHandshakes = new Set<string>();

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
    const port = this.deps.targetPort(socket);
    const opaquePort = port !== undefined && portSetHas(this.deps.opaquePorts, port);
    if (direction === "outbound" && opaquePort) {
      // Declared opaque: no detection, so a server-first protocol is not kept waiting.
      this.admit(socket, this.plaintextFacts("opaque", true), Buffer.alloc(0));
      return;
    }
    // Inbound on an opaque port, only a peer proxy's TLS is told apart from the bytes to relay.
    const tlsOnly = direction === "inbound" && opaquePort;
    void detect(socket, limits.detectTimeoutMs, tlsOnly).then((found) => {
      if (!found || socket.destroyed) {
        socket.destroy();
        return;
      }
      if (found.protocol === "tls" && this.deps.serverTls) {
        this.acceptTls(socket, found.prefix, opaquePort);
        return;
      }
      this.admit(socket, this.plaintextFacts(found.protocol, opaquePort), found.prefix);
    });
  }

  private plaintextFacts(protocol: ConnectionProtocol, opaquePort: boolean): ConnectionFacts {
    const { direction, opaqueFallback } = this.deps;
    return {
      direction,
      transport: "plaintext",
      peerIdentity: undefined,
      protocol,
      peerAskedOpaque: false,
      opaqueDestination: opaquePort || (direction === "outbound" && opaqueFallback),
    };
  }

  /** Decides, once, and hands the connection to the one path the decision names. */
  private admit(socket: Socket, facts: ConnectionFacts, prefix: Buffer | undefined): void {
    const admission: Admission = admitConnection(facts, this.deps.policy);
    const { direction, metrics } = this.deps;
    if (admission.verdict === "refuse") {
      metrics.tcpRejected.inc([direction, admission.reason]);
      if (admission.answer) socket.end(badRequest);
      else socket.destroy();
      return;
    }
    if (admission.verdict === "relay" && !this.deps.opaque) {
      metrics.tcpRejected.inc([direction, "opaque_not_configured"]);
      socket.destroy();
      return;
    }
    if (admission.verdict === "forbid") metrics.tcpRejected.inc([direction, admission.reason]);
    const conn = this.context(socket, facts);
    // Detection and the TLS handshake have their own deadlines; idleness starts here. node:http2
    // reads the socket natively and never refreshes a socket timer, which would destroy every
    // HTTP/2 connection one idle timeout after it was accepted, busy or not: the HTTP/2 server's
    // session timer counts frames instead (server-h2.ts). HTTP/1.1 and opaque relays read in
    // JavaScript, which refreshes the socket timer (the TLS socket's, under mTLS).
    if (admission.verdict === "relay") {
      socket.setTimeout(this.deps.limits.idleTimeoutMs, () => socket.destroy());
      void this.deps.opaque!(socket, prefix ?? Buffer.alloc(0));
      return;
    }
    const servers = admission.verdict === "serve" ? this.deps.http : this.deps.forbidden;
    if (!servers) {
      socket.destroy();
      return;
    }
    if (admission.protocol === "h2") {
      servers.h2.accept(socket, conn, prefix);
      return;
    }
    socket.setTimeout(this.deps.limits.idleTimeoutMs, () => socket.destroy());
    servers.h1.accept(socket, conn, prefix);
  }

  private context(socket: Socket, facts: ConnectionFacts): ConnectionContext {
    const { direction } = this.deps;
    const peer = facts.transport === "mtls" ? facts.peerIdentity : undefined;
    this.deps.metrics.tcpOpen.inc([direction, facts.transport, peer ?? ""]);
    return { direction, tls: facts.transport, peerIdentity: peer, clientAddress: socket.remoteAddress ?? "" };
  }

  /**
   * Terminates mTLS: OpenSSL verifies the client chain against our anchors (rejectUnauthorized),
   * then the client must carry a SPIFFE ID. A renewed leaf or reloaded bundle is swapped in with
   * setSecureContext; connections already open keep the context they started with.
   */
  private acceptTls(socket: Socket, prefix: Buffer, opaquePort: boolean): void {
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
    if (opaquePort) {
      const key = addressKey(socket);
      this.opaqueHandshakes.add(key);
      socket.once("close", () => this.opaqueHandshakes.delete(key));
    }
    socket.unshift(prefix);
    server.emit("connection", socket);
  }

  private onSecure(tlsSocket: tls.TLSSocket): void {
    const { direction, metrics } = this.deps;
    tlsSocket.on("error", () => tlsSocket.destroy());
    const opaquePort = this.opaqueHandshakes.delete(addressKey(tlsSocket));
    const peer = peerSpiffeId(tlsSocket.getPeerCertificate());
    if (peer === undefined) {
      metrics.tlsHandshakeFailures.inc([direction, "no_peer_identity"]);
      tlsSocket.destroy();
      return;
    }
    const alpn = tlsSocket.alpnProtocol;
    const facts = (protocol: ConnectionProtocol): ConnectionFacts => ({
      direction,
      transport: "mtls",
      peerIdentity: peer,
      protocol,
      peerAskedOpaque: alpn === opaqueAlpn,
      opaqueDestination: opaquePort,
    });
    if (alpn === "h2") this.admit(tlsSocket, facts("h2"), undefined);
    else if (alpn !== opaqueAlpn) this.admit(tlsSocket, facts("http/1.1"), undefined);
    else if (opaquePort) this.admit(tlsSocket, facts("opaque"), undefined);
    else {
      // A peer asked for an opaque stream to a port not declared opaque: HTTP inside it still
      // takes the HTTP path, so the proxy's own headers are stripped and set there.
      void detect(tlsSocket, this.deps.limits.detectTimeoutMs).then((found) => {
        if (!found || tlsSocket.destroyed) tlsSocket.destroy();
        else this.admit(tlsSocket, facts(found.protocol), found.prefix);
      });
    }
  }
}

function addressKey(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}
