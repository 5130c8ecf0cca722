/**
 * One listening socket (inbound or outbound): connection limits, protocol detection, mTLS
 * termination on the inbound side, then the connection policy (connection-policy.ts) decided
 * once per connection, and the connection handed to exactly the path that decision names: the
 * HTTP/1.1 or HTTP/2 server of the stack, the servers that answer 403, the opaque relay, or a
 * close. No byte reaches an application before the decision.
 *
 * With transparent capture, what a connection is *for* is decided first, from its original
 * destination (outbound-destination.ts, inbound-target.ts) or the transport header a peer proxy
 * sends (transport-header.ts), and becomes part of the facts the policy decides on.
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
import type { InboundTargets } from "./inbound-target.ts";
import type { OutboundDecision } from "./outbound-destination.ts";
import { peerSpiffeId } from "./peer-certificate.ts";
import type { ProxyMetrics } from "./proxy-metrics.ts";
import type { H1Server } from "./server-h1.ts";
import type { H2Server } from "./server-h2.ts";
import { expiredSessionCertificate } from "./tls-session-bounds.ts";
import { readTransportHeader, type TransportHeader, transportAlpn } from "./transport-header.ts";
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
      /** Ports that admit plaintext clients even when the policy's default does not. */
      plaintextPorts: PortSet;
    };

type Extra = Pick<ConnectionContext, "originalDestination" | "target">;

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
  capture?: Capture | undefined;
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
    this.detectAndAdmit(socket, this.deps.targetPort(socket), {});
  }

  private onOutboundDecision(socket: Socket, d: OutboundDecision): void {
    if (socket.destroyed) return;
    if (d.kind === "loop") {
      this.deps.metrics.tcpRejected.inc([this.deps.direction, "loop"]);
      socket.destroy();
      return;
    }
    if (d.kind === "explicit") {
      this.detectAndAdmit(socket, undefined, {});
      return;
    }
    const extra = { originalDestination: d.destination };
    if (d.opaque) {
      this.admit(socket, this.plaintextFacts("opaque", true), Buffer.alloc(0), extra);
      return;
    }
    // Whatever the bytes turn out to be, they have a destination: the one the application dialled.
    this.detectAndAdmit(socket, d.destination.port, extra, true);
  }

  /** A client outside the mesh, redirected by the pod's rules: plaintext (or its own TLS) to `port`. */
  private onRedirectedInbound(
    socket: Socket,
    port: number,
    capture: Extract<Capture, { direction: "inbound" }>,
  ): void {
    const { direction, metrics, limits } = this.deps;
    const t = capture.targets.resolve(socket, port);
    if (!t.ok) {
      metrics.tcpRejected.inc([direction, t.reason]);
      socket.destroy();
      return;
    }
    const extra = { target: t.target };
    const base = this.deps.policy;
    const policy =
      base && portSetHas(capture.plaintextPorts, port) ? { ...base, allowPlaintext: true } : base;
    const opaquePort = portSetHas(this.deps.opaquePorts, port);
    if (opaquePort) {
      this.admit(socket, this.plaintextFacts("opaque", true), Buffer.alloc(0), extra, policy);
      return;
    }
    void detect(socket, limits.detectTimeoutMs).then((found) => {
      if (!found || socket.destroyed) {
        socket.destroy();
        return;
      }
      // TLS here is the application's own (an unmeshed client of an HTTPS port), never a peer
      // proxy's (they dial the inbound port): its destination is the application, relayed as is.
      const facts = this.plaintextFacts(found.protocol, found.protocol === "tls");
      this.admit(socket, facts, found.prefix, extra, policy);
    });
  }

  private detectAndAdmit(
    socket: Socket,
    port: number | undefined,
    extra: Extra,
    hasDestination = false,
  ): void {
    const { direction, limits, metrics } = this.deps;
    const opaquePort = port !== undefined && portSetHas(this.deps.opaquePorts, port);
    if (direction === "outbound" && opaquePort) {
      // Declared opaque: no detection, so a server-first protocol is not kept waiting.
      this.admit(socket, this.plaintextFacts("opaque", true), Buffer.alloc(0), extra);
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
      let connExtra = extra;
      if (this.deps.capture?.direction === "inbound") {
        // Plaintext sent to the inbound port itself (not redirected): the fallback target.
        const t = this.deps.capture.targets.resolve(socket, undefined);
        if (!t.ok) {
          metrics.tcpRejected.inc([direction, t.reason]);
          socket.destroy();
          return;
        }
        connExtra = { ...extra, target: t.target };
      }
      this.admit(
        socket,
        this.plaintextFacts(found.protocol, opaquePort || hasDestination),
        found.prefix,
        connExtra,
      );
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
  private admit(
    socket: Socket,
    facts: ConnectionFacts,
    prefix: Buffer | undefined,
    extra: Extra = {},
    policy: InboundPolicy | undefined = this.deps.policy,
  ): void {
    const admission: Admission = admitConnection(facts, policy);
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
    const conn = this.context(socket, facts, extra);
    // Detection and the TLS handshake have their own deadlines; idleness starts here. node:http2
    // reads the socket natively and never refreshes a socket timer, which would destroy every
    // HTTP/2 connection one idle timeout after it was accepted, busy or not: the HTTP/2 server's
    // session timer counts frames instead (server-h2.ts). HTTP/1.1 and opaque relays read in
    // JavaScript, which refreshes the socket timer (the TLS socket's, under mTLS).
    if (admission.verdict === "relay") {
      socket.setTimeout(this.deps.limits.idleTimeoutMs, () => socket.destroy());
      void this.deps.opaque!(socket, prefix ?? Buffer.alloc(0), conn);
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

  private context(socket: Socket, facts: ConnectionFacts, extra: Extra): ConnectionContext {
    const { direction } = this.deps;
    const peer = facts.transport === "mtls" ? facts.peerIdentity : undefined;
    this.deps.metrics.tcpOpen.inc([direction, facts.transport, peer ?? ""]);
    return {
      direction,
      tls: facts.transport,
      peerIdentity: peer,
      clientAddress: socket.remoteAddress ?? "",
      ...extra,
    };
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
    const alpn = tlsSocket.alpnProtocol;
    const capture = this.deps.capture;
    if (alpn === transportAlpn && capture?.direction === "inbound") {
      void readTransportHeader(tlsSocket, this.deps.limits.detectTimeoutMs).then((r) => {
        const t = "header" in r ? capture.targets.resolve(tlsSocket, r.header.targetPort) : undefined;
        if (!("header" in r) || !t?.ok) {
          metrics.tcpRejected.inc([direction, t && !t.ok ? t.reason : "bad_transport_header"]);
          tlsSocket.destroy();
          return;
        }
        if (r.rest.length > 0) tlsSocket.unshift(r.rest);
        this.admitPeer(tlsSocket, peer, r.header, portSetHas(this.deps.opaquePorts, r.header.targetPort), {
          target: t.target,
        });
      });
      return;
    }
    let extra: Extra = {};
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
    const protocol = alpn === "h2" ? "h2" : alpn === opaqueAlpn ? "opaque" : "http/1.1";
    this.admitPeer(tlsSocket, peer, { protocol, targetPort: 0 }, opaquePort, extra);
  }

  /** A verified peer proxy's connection, its protocol named by ALPN or the transport header. */
  private admitPeer(
    tlsSocket: tls.TLSSocket,
    peer: string,
    header: TransportHeader,
    opaquePort: boolean,
    extra: Extra,
  ): void {
    const facts = (protocol: ConnectionProtocol): ConnectionFacts => ({
      direction: this.deps.direction,
      transport: "mtls",
      peerIdentity: peer,
      protocol,
      peerAskedOpaque: header.protocol === "opaque",
      opaqueDestination: opaquePort,
    });
    if (header.protocol !== "opaque") this.admit(tlsSocket, facts(header.protocol), undefined, extra);
    else if (opaquePort) this.admit(tlsSocket, facts("opaque"), undefined, extra);
    else {
      // A peer asked for an opaque stream to a port not declared opaque: HTTP inside it still
      // takes the HTTP path, so the proxy's own headers are stripped and set there.
      void detect(tlsSocket, this.deps.limits.detectTimeoutMs).then((found) => {
        if (!found || tlsSocket.destroyed) tlsSocket.destroy();
        else this.admit(tlsSocket, facts(found.protocol), found.prefix, extra);
      });
    }
  }
}

function addressKey(s: Socket): string {
  return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
}
