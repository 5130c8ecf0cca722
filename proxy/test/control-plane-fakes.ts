/**
 * Test fixture: in-test destination and identity services speaking the wire protocols in
 * docs/proxy.md, on loopback. They stand in for controlplane/ so the proxy is tested over the
 * network exactly as it runs. Each can also misbehave the way a control plane does: a watch
 * held unanswered, a certify request failed, hung or answered with garbage
 * (control-plane-process.ts runs them as child processes that can be killed or frozen).
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { parseCsr } from "../../pki/index.ts";
import type { DiscoveryUpdate } from "../discovery-protocol.ts";
import { peerSpiffeId } from "../peer-certificate.ts";
import { issueFor, type MeshCa, serverCredentials } from "./mesh-pki.ts";

function listen(server: http2.Http2Server | http2.Http2SecureServer, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

export class FakeDestination {
  port = 0;
  /** SPIFFE IDs of the clients that connected (mutual TLS only). */
  readonly clients = new Set<string>();
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly secure: boolean;

  /** With `ca`: mutual TLS like the real service, client certificates required. */
  constructor(o: { ca?: MeshCa } = {}) {
    this.secure = o.ca !== undefined;
    if (!o.ca) {
      this.server = http2.createServer();
      return;
    }
    const server = http2.createSecureServer({
      ...serverCredentials(o.ca),
      ca: o.ca.anchor.pem,
      requestCert: true,
      rejectUnauthorized: true,
      allowHTTP1: false,
    });
    server.on("session", (session) => {
      const id = peerSpiffeId((session.socket as TLSSocket).getPeerCertificate());
      if (id) this.clients.add(id);
    });
    this.server = server;
  }
  private readonly state = new Map<string, DiscoveryUpdate>();
  /**
   * The answer for an authority never `set`: with one, no authority is "not a mesh service", so
   * a proxy never dials a name from a test's (possibly mangled) Host header directly.
   */
  fallback: DiscoveryUpdate | undefined;
  private readonly watchers = new Map<string, Set<http2.ServerHttp2Stream>>();
  /** Authorities whose new watch streams are accepted and never answered. */
  private readonly held = new Set<string>();
  /** Watch requests received, by authority. */
  readonly watchRequests = new Map<string, number>();
  /** Held streams the client gave up on (cancelled or closed). */
  heldStreamsClosed = 0;
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  async start(port = 0): Promise<this> {
    this.server.on("stream", (stream, headers) => this.onStream(stream, headers));
    this.server.on("session", (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.once("close", () => this.sessions.delete(s));
    });
    this.port = await listen(this.server, port);
    return this;
  }

  /** New watches of `authority` get no answer at all (not even headers) until `release`. */
  hold(authority: string): void {
    this.held.add(authority);
  }

  release(authority: string): void {
    this.held.delete(authority);
  }

  get url(): string {
    return `${this.secure ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  /** Sets (and pushes to watchers) the state of an authority. */
  set(authority: string, update: Partial<DiscoveryUpdate>): void {
    const full: DiscoveryUpdate = { endpoints: [], routes: [], retryBudget: undefined, ...update };
    this.state.set(authority, full);
    for (const s of this.watchers.get(authority) ?? []) s.write(`${JSON.stringify(full)}\n`);
  }

  close(): Promise<void> {
    for (const set of this.watchers.values()) for (const s of set) s.close();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.destroy();
    return closed;
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => {});
    const url = new URL(headers[":path"] ?? "/", "http://x");
    const authority = url.searchParams.get("authority") ?? "";
    this.watchRequests.set(authority, (this.watchRequests.get(authority) ?? 0) + 1);
    if (this.held.has(authority)) {
      stream.once("close", () => this.heldStreamsClosed++);
      return;
    }
    const current = this.state.get(authority) ?? this.fallback;
    if (url.pathname !== "/v1/watch" || !current) {
      stream.respond({ ":status": 404 }, { endStream: true });
      return;
    }
    stream.respond({ ":status": 200, "content-type": "application/x-ndjson" });
    stream.write(`${JSON.stringify(current)}\n`);
    let set = this.watchers.get(authority);
    if (!set) {
      set = new Set();
      this.watchers.set(authority, set);
    }
    set.add(stream);
    stream.once("close", () => set.delete(stream));
  }
}

export type IdentityMode = "issue" | "fail" | "hang" | "garbage";

export class FakeIdentity {
  port = 0;
  /** Certificates issued, by SPIFFE ID. */
  readonly issued = new Map<string, number>();
  /** When each certify request arrived (ms since the epoch), by SPIFFE ID. */
  readonly requests = new Map<string, number[]>();
  /** issue; fail (503); hang (never answer); garbage (200 with a body that is not an answer). */
  mode: IdentityMode = "issue";
  /** Leaf lifetimes for particular SPIFFE IDs, instead of `lifetimeMs`. */
  readonly lifetimes = new Map<string, number>();
  /** Modes for particular SPIFFE IDs, instead of `mode`. */
  readonly modes = new Map<string, IdentityMode>();
  private server: http2.Http2SecureServer;

  constructor(
    private ca: MeshCa,
    private readonly tokens: Map<string, string>,
    public lifetimeMs: number,
  ) {
    this.server = http2.createSecureServer({ ...serverCredentials(ca), allowHTTP1: false });
  }

  async start(port = 0): Promise<this> {
    this.server.on("stream", (stream, headers) => this.onStream(stream, headers));
    this.port = await listen(this.server, port);
    return this;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  /** Issues from, and serves a certificate of, another CA from now on (an anchor rotation). */
  useCa(ca: MeshCa): void {
    this.ca = ca;
    this.server.setSecureContext(serverCredentials(ca));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => {});
    const token = String(headers.authorization ?? "").replace(/^Bearer /, "");
    const spiffeId = this.tokens.get(token);
    if (headers[":path"] !== "/v1/certify" || headers[":method"] !== "POST" || !spiffeId) {
      stream.respond({ ":status": spiffeId ? 404 : 401 }, { endStream: true });
      return;
    }
    this.requests.set(spiffeId, [...(this.requests.get(spiffeId) ?? []), Date.now()]);
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      const mode = this.modes.get(spiffeId) ?? this.mode;
      if (mode === "hang") return;
      if (mode === "fail") {
        stream.respond({ ":status": 503, "content-type": "application/json" });
        stream.end(JSON.stringify({ error: "NoIssuer", message: "failing on purpose" }));
        return;
      }
      if (mode === "garbage") {
        stream.respond({ ":status": 200, "content-type": "application/json" });
        stream.end(
          '{"certificateChainPem":"-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n"}',
        );
        return;
      }
      try {
        const csr = parseCsr(Buffer.concat(chunks).toString("utf8"));
        if (csr.spiffeId !== undefined && csr.spiffeId !== spiffeId) throw new Error("identity mismatch");
        const lifetimeMs = this.lifetimes.get(spiffeId) ?? this.lifetimeMs;
        const chain = issueFor(this.ca, csr.publicKey, { spiffeId, lifetimeMs });
        this.issued.set(spiffeId, (this.issued.get(spiffeId) ?? 0) + 1);
        const body = JSON.stringify({
          certificateChainPem: chain,
          notAfter: new Date(Date.now() + lifetimeMs).toISOString(),
        });
        stream.respond({ ":status": 200, "content-type": "application/json" });
        stream.end(body);
      } catch (err) {
        stream.respond({ ":status": 400 });
        stream.end((err as Error).message);
      }
    });
  }
}
