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
import type { InboundTargets } from "./inbound-target.ts";
import type { OutboundDecision } from "./outbound-destination.ts";
import { peerSpiffeId } from "./peer-certificate.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { H1Server } from "./server-h1.ts";
import type { H2Server } from "./server-h2.ts";
import { readTransportHeader, transportAlpn } from "./transport-header.ts";
import { opaqueAlpn } from "./upstream.ts";

export interface ServerTls {
  readonly generation: number;
  secureOptions(): tls.SecureContextOptions | undefined;
}

export type OpaqueHandler = (socket: Socket, prefix: Buffer, conn: ConnectionContext) => void | Promise<void>;

/** Transparent capture (capture mode only): what each connection is for, decided before any byte is read. */
export type Capture =
  | { direction: "outbound"; decide: (socket: Socket) => Promise<OutboundDecision> }
  | {
      direction: "inbound";
      originalDestination: (socket: Socket) => HostPort | undefined;
      targets: InboundTargets;
      opaquePorts: { has(port: number): boolean };
      /** Whether plaintext (an unmeshed client) may reach `port`. */
      plaintextAllowed: (port: number) => boolean;
    };

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
  capture?: Capture | undefined;
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
        // The transport header first: a client that offers it names the target port (capture).
        ALPNProtocols: deps.capture
          ? [transportAlpn, "h2", "http/1.1", opaqueAlpn]
          : ["h2", "http/1.1", opaqueAlpn],
        handshakeTimeout: deps.limits.detectTimeoutMs,
      });
      this.tlsServer.on("secureConnection", (s: tls.TLSSocket) => this.onSecure(s));
      this.tlsServer.on("tlsClientError", (_err, s: tls.TLSSocket) => {
        metrics.tlsHandshakeFailures.inc([direction, "server"]);
        s.destroy();
      });
    }
  }

  /** `ipv6Only`: a `::` socket beside an IPv4 one on the same port (capture's IPv6 twin). */
  listen(at: HostPort, ipv6Only = false): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: at.host, port: at.port, backlog: 1024, ipv6Only }, () => {
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
    const capture = this.deps.capture;
    if (capture?.direction === "outbound") {
      void capture.decide(socket).then(
        (d) => this.onOutboundDecision(socket, d),
        () => socket.destroy(),
      );
      return;
    }
    if (capture?.direction === "inbound") {
      const dst = capture.originalDestination(socket);
      // Peer proxies dial the inbound port itself; whatever the rules redirected is a client
      // outside the mesh, bound for the port it dialled.
      if (dst && dst.port !== socket.localPort) {
        this.onRedirectedInbound(socket, dst.port, capture);
        return;
      }
    }
    this.detectAndDispatch(socket, {});
  }

  private onOutboundDecision(socket: Socket, d: OutboundDecision): void {
    if (socket.destroyed) return;
    if (d.kind === "loop") {
      this.deps.metrics.tcpRejected.inc([this.deps.direction, "loop"]);
      socket.destroy();
      return;
    }
    const extra = d.kind === "destination" ? { originalDestination: d.destination } : {};
    if (d.kind === "destination" && d.opaque) {
      this.dispatch(socket, "opaque", this.context(socket, "plaintext", undefined, extra), undefined);
      return;
    }
    this.detectAndDispatch(socket, extra);
  }

  private onRedirectedInbound(
    socket: Socket,
    port: number,
    capture: Extract<Capture, { direction: "inbound" }>,
  ): void {
    const { direction, metrics, limits } = this.deps;
    const t = capture.targets.resolve(socket, port);
    if (!t.ok || !capture.plaintextAllowed(port)) {
      metrics.tcpRejected.inc([direction, t.ok ? "plaintext_not_allowed" : t.reason]);
      socket.destroy();
      return;
    }
    const extra = { target: t.target };
    if (capture.opaquePorts.has(port)) {
      this.dispatch(socket, "opaque", this.context(socket, "plaintext", undefined, extra), undefined);
      return;
    }
    void detect(socket, limits.detectTimeoutMs).then((found) => {
      if (!found || socket.destroyed) {
        socket.destroy();
        return;
      }
      // TLS here is the application's own (an unmeshed client of an HTTPS port): relayed as is.
      const protocol = found.protocol === "tls" ? "opaque" : found.protocol;
      this.dispatch(socket, protocol, this.context(socket, "plaintext", undefined, extra), found.prefix);
    });
  }

  private detectAndDispatch(socket: Socket, extra: Partial<ConnectionContext>): void {
    const { direction, limits, metrics } = this.deps;
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
      if (this.deps.capture?.direction === "inbound") {
        // Plaintext sent to the inbound port itself (not redirected): the fallback target.
        const t = this.deps.capture.targets.resolve(socket, undefined);
        if (!t.ok) {
          metrics.tcpRejected.inc([direction, t.reason]);
          socket.destroy();
          return;
        }
        extra = { ...extra, target: t.target };
      }
      const conn = this.context(socket, "plaintext", undefined, extra);
      const protocol = found.protocol === "tls" ? "opaque" : found.protocol;
      this.dispatch(socket, protocol, conn, found.prefix);
    });
  }

  private context(
    socket: Socket,
    tlsStatus: "mtls" | "plaintext",
    peer: string | undefined,
    extra: Partial<ConnectionContext> = {},
  ): ConnectionContext {
    this.deps.metrics.tcpOpen.inc([this.deps.direction, tlsStatus, peer ?? ""]);
    return {
      direction: this.deps.direction,
      tls: tlsStatus,
      peerIdentity: peer,
      clientAddress: socket.remoteAddress ?? "",
      ...extra,
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
    else if (this.deps.opaque) void this.deps.opaque(socket, prefix ?? Buffer.alloc(0), conn);
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
    const peer = peerSpiffeId(tlsSocket.getPeerCertificate());
    if (peer === undefined) {
      metrics.tlsHandshakeFailures.inc([direction, "no_peer_identity"]);
      tlsSocket.destroy();
      return;
    }
    const alpn = tlsSocket.alpnProtocol;
    const capture = this.deps.capture;
    if (alpn === transportAlpn) {
      void readTransportHeader(tlsSocket, this.deps.limits.detectTimeoutMs).then((r) => {
        const t =
          "header" in r && capture?.direction === "inbound"
            ? capture.targets.resolve(tlsSocket, r.header.targetPort)
            : { ok: false as const, reason: "bad_transport_header" };
        if (!("header" in r) || !t.ok) {
          metrics.tcpRejected.inc([direction, t.ok ? "bad_transport_header" : t.reason]);
          tlsSocket.destroy();
          return;
        }
        if (r.rest.length > 0) tlsSocket.unshift(r.rest);
        const conn = this.context(tlsSocket, "mtls", peer, { target: t.target });
        this.dispatch(tlsSocket, r.header.protocol, conn, undefined);
      });
      return;
    }
    let extra: Partial<ConnectionContext> = {};
    if (capture?.direction === "inbound") {
      // A peer proxy too old to name the port: the fallback target, if there is one.
      const t = capture.targets.resolve(tlsSocket, undefined);
      if (!t.ok) {
        metrics.tcpRejected.inc([direction, t.reason]);
        tlsSocket.destroy();
        return;
      }
      extra = { target: t.target };
    }
    const conn = this.context(tlsSocket, "mtls", peer, extra);
    const protocol = alpn === "h2" ? "h2" : alpn === opaqueAlpn ? "opaque" : "http/1.1";
    this.dispatch(tlsSocket, protocol, conn, undefined);
  }
}
