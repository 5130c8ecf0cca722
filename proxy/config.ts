/**
 * The proxy's configuration: its typed shape, defaults, and validation of a raw JSON value
 * into it with every error reported at once (path and what was expected).
 *
 * Owns: meaning and defaults of every setting. Does not read files or the environment
 * (config-source.ts) and does not exit the process (main.ts).
 */
import { type AppProbe, parseAppProbes } from "../capture/app-probes.ts";

export interface HostPort {
  host: string;
  port: number;
}

/** Ports as inclusive ranges (a single port is a range of one). */
export type PortSet = readonly { from: number; to: number }[];

/**
 * Ports where the server speaks first or the protocol is not HTTP, as mature meshes default
 * them (Linkerd's opaque ports): SMTP, submission, MySQL, Galera, PostgreSQL, Redis,
 * Elasticsearch transport, memcached. Never sniffed unless a setting replaces the list.
 */
export const defaultOpaquePorts: PortSet = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211].map((p) => ({
  from: p,
  to: p,
}));

export function portSetHas(set: PortSet, port: number): boolean {
  for (const r of set) if (port >= r.from && port <= r.to) return true;
  return false;
}

/**
 * Parses ports and ranges: a list of numbers and "from-to" strings, or one comma-separated
 * string of them ("25,587,8000-8010"). Returns undefined on anything else.
 */
export function parsePortSet(v: unknown): PortSet | undefined {
  const items = typeof v === "string" ? (v.trim() === "" ? [] : v.split(",")) : v;
  if (!Array.isArray(items)) return undefined;
  const out: { from: number; to: number }[] = [];
  for (const item of items) {
    const m =
      typeof item === "number"
        ? [String(item), String(item)]
        : /^\s*(\d{1,5})(?:-(\d{1,5}))?\s*$/.exec(String(item))?.slice(1);
    if (!m) return undefined;
    const from = Number(m[0]);
    const to = m[1] === undefined ? from : Number(m[1]);
    if (!Number.isInteger(from) || from < 1 || to > 65535 || to < from) return undefined;
    out.push({ from, to });
  }
  return out;
}

export interface Limits {
  /** Accepted connections per listener beyond which new ones are closed at once. */
  maxConnections: number;
  /** Largest HTTP/1.1 header block or HTTP/2 header list accepted, in bytes. */
  maxHeaderBytes: number;
  /** Time a client has to send a complete request head. */
  headerTimeoutMs: number;
  /** A connection with no traffic for this long is closed. */
  idleTimeoutMs: number;
  /** Time to read enough bytes to tell TLS, HTTP/1, HTTP/2 or opaque TCP apart. */
  detectTimeoutMs: number;
  connectTimeoutMs: number;
  maxConcurrentStreams: number;
  /** Destinations watched at once; the least recently used is dropped past this. */
  maxServices: number;
  /** Time to wait for a destination's first discovery update. */
  discoveryTimeoutMs: number;
  /** How often the connection to the destination service is PINGed … */
  discoveryPingIntervalMs: number;
  /** … and how long a PING may go unanswered before the connection is given up. */
  discoveryPingTimeoutMs: number;
  /** Time in-flight requests get to finish after SIGTERM. */
  shutdownGraceMs: number;
  /** How often free memory the C allocator holds goes back to the kernel (memory-release.ts); 0: never. */
  memoryReleaseIntervalMs: number;
}

export interface ProxyConfig {
  /** appProbes: the application's probes the kubelet asks for on the admin port (app-probe.ts). */
  admin: { listen: HostPort; appProbes: Record<string, AppProbe> };
  /**
   * Transparent capture: nat rules in the pod send every connection here, and each listener
   * reads the connection's original destination (SO_ORIGINAL_DST) to know where it was going.
   */
  capture: boolean;
  inbound:
    | {
        listen: HostPort;
        /**
         * Without capture: the application. With capture: only the fallback for connections that
         * name no port (a peer proxy without the transport header, plaintext not redirected).
         */
        app: HostPort | undefined;
        allowPlaintext: boolean;
        /** Ports that admit plaintext clients even when allowPlaintext is false. */
        plaintextPorts: PortSet;
        authorizedIdentities: string[] | undefined;
        /**
         * Target ports whose traffic is opaque TCP: only a peer proxy's TLS is detected, every
         * other byte is relayed to the application unread — still only for clients the policy
         * admits. Other ports accept HTTP, or an opaque stream a peer proxy asked for.
         * Default: `defaultOpaquePorts`.
         */
        opaquePorts: PortSet;
      }
    | undefined;
  outbound:
    | {
        listen: HostPort;
        opaqueAuthority: string | undefined;
        /** Namespace short Service names (`web:8080`) resolve in. */
        podNamespace: string | undefined;
        clusterDomain: string;
        /**
         * Original-destination ports whose traffic is relayed at once, without protocol
         * detection. Default: `defaultOpaquePorts`.
         */
        opaquePorts: PortSet;
      }
    | undefined;
  identity:
    | {
        url: string;
        tokenPath: string;
        trustBundlePath: string;
        spiffeId: string | undefined;
        /** SPIFFE ID or DNS name the identity service's certificate must carry; defaults to the URL host. */
        serverIdentity: string | undefined;
        renewFraction: number;
        trustBundlePollMs: number;
      }
    | undefined;
  destination: { url: string; serverIdentity: string | undefined } | undefined;
  limits: Limits;
  balancer: { defaultRttMs: number; decayMs: number };
  retries: { maxAttempts: number; maxBufferedBodyBytes: number };
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
}

export const defaultLimits: Limits = {
  maxConnections: 10_000,
  maxHeaderBytes: 16 * 1024,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  detectTimeoutMs: 5_000,
  connectTimeoutMs: 1_000,
  maxConcurrentStreams: 100,
  maxServices: 1_000,
  discoveryTimeoutMs: 5_000,
  discoveryPingIntervalMs: 10_000,
  discoveryPingTimeoutMs: 5_000,
  shutdownGraceMs: 10_000,
  memoryReleaseIntervalMs: 1_000,
};

type Raw = Record<string, unknown>;

class Reader {
  readonly errors: string[] = [];

  obj(v: unknown, path: string): Raw | undefined {
    if (v === undefined) return undefined;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Raw;
    this.errors.push(`${path}: expected an object`);
    return undefined;
  }

  str(o: Raw | undefined, key: string, path: string, required: boolean): string | undefined {
    const v = o?.[key];
    if (v === undefined || v === "") {
      if (required) this.errors.push(`${path}.${key}: required`);
      return undefined;
    }
    if (typeof v === "string") return v;
    this.errors.push(`${path}.${key}: expected a string`);
    return undefined;
  }

  num(o: Raw | undefined, key: string, path: string, fallback: number, min: number, max: number): number {
    const v = o?.[key];
    if (v === undefined) return fallback;
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n) || n < min || n > max) {
      this.errors.push(`${path}.${key}: expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return fallback;
    }
    return n;
  }

  bool(o: Raw | undefined, key: string, path: string, fallback: boolean): boolean {
    const v = o?.[key];
    if (v === undefined) return fallback;
    if (v === true || v === "true") return true;
    if (v === false || v === "false") return false;
    this.errors.push(`${path}.${key}: expected true or false`);
    return fallback;
  }

  hostPort(o: Raw | undefined, key: string, path: string, required: boolean): HostPort | undefined {
    const s = this.str(o, key, path, required);
    if (s === undefined) return undefined;
    const hp = parseHostPort(s);
    if (!hp) this.errors.push(`${path}.${key}: expected host:port (e.g. 127.0.0.1:4143), got "${s}"`);
    return hp;
  }

  url(o: Raw | undefined, key: string, path: string, required: boolean): string | undefined {
    const s = this.str(o, key, path, required);
    if (s === undefined) return undefined;
    if (!/^https?:\/\/[^/]+\/?$/.test(s)) {
      this.errors.push(`${path}.${key}: expected http://host:port or https://host:port, got "${s}"`);
      return undefined;
    }
    return s.replace(/\/$/, "");
  }

  /** Absent: `fallback`; `"none"`: no port (an environment variable cannot be empty). */
  ports(o: Raw | undefined, key: string, path: string, fallback: PortSet): PortSet {
    const v = o?.[key];
    if (v === undefined) return fallback;
    if (v === "none") return [];
    const set = parsePortSet(v);
    if (set === undefined) {
      this.errors.push(
        `${path}.${key}: expected ports and ranges from 1 to 65535 (e.g. "25,3306,8000-8010"), or "none", got ${JSON.stringify(v)}`,
      );
      return fallback;
    }
    return set;
  }

  strList(o: Raw | undefined, key: string, path: string): string[] | undefined {
    const v = o?.[key];
    if (v === undefined) return undefined;
    const list = typeof v === "string" ? v.split(",").map((x) => x.trim()) : v;
    if (Array.isArray(list) && list.every((x) => typeof x === "string" && x !== "")) return list as string[];
    this.errors.push(`${path}.${key}: expected a list of strings`);
    return undefined;
  }
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

export function parseHostPort(s: string): HostPort | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 0 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

function readLimits(r: Reader, o: Raw | undefined): Limits {
  const d = defaultLimits;
  const p = "limits";
  const day = 86_400_000;
  return {
    maxConnections: r.num(o, "maxConnections", p, d.maxConnections, 1, 1_000_000),
    maxHeaderBytes: r.num(o, "maxHeaderBytes", p, d.maxHeaderBytes, 1024, 1024 * 1024),
    headerTimeoutMs: r.num(o, "headerTimeoutMs", p, d.headerTimeoutMs, 10, day),
    idleTimeoutMs: r.num(o, "idleTimeoutMs", p, d.idleTimeoutMs, 10, day),
    detectTimeoutMs: r.num(o, "detectTimeoutMs", p, d.detectTimeoutMs, 10, day),
    connectTimeoutMs: r.num(o, "connectTimeoutMs", p, d.connectTimeoutMs, 10, day),
    maxConcurrentStreams: r.num(o, "maxConcurrentStreams", p, d.maxConcurrentStreams, 1, 65_535),
    maxServices: r.num(o, "maxServices", p, d.maxServices, 1, 1_000_000),
    discoveryTimeoutMs: r.num(o, "discoveryTimeoutMs", p, d.discoveryTimeoutMs, 10, day),
    discoveryPingIntervalMs: r.num(o, "discoveryPingIntervalMs", p, d.discoveryPingIntervalMs, 10, day),
    discoveryPingTimeoutMs: r.num(o, "discoveryPingTimeoutMs", p, d.discoveryPingTimeoutMs, 10, day),
    shutdownGraceMs: r.num(o, "shutdownGraceMs", p, d.shutdownGraceMs, 0, day),
    memoryReleaseIntervalMs: r.num(o, "memoryReleaseIntervalMs", p, d.memoryReleaseIntervalMs, 0, day),
  };
}

function readIdentity(r: Reader, o: Raw | undefined): ProxyConfig["identity"] {
  if (o === undefined) return undefined;
  const p = "identity";
  const url = r.url(o, "url", p, true);
  const tokenPath = r.str(o, "tokenPath", p, true);
  const trustBundlePath = r.str(o, "trustBundlePath", p, true);
  const identity = {
    url: url ?? "",
    tokenPath: tokenPath ?? "",
    trustBundlePath: trustBundlePath ?? "",
    spiffeId: r.str(o, "spiffeId", p, false),
    serverIdentity: r.str(o, "serverIdentity", p, false),
    renewFraction: r.num(o, "renewFraction", p, 0.7, 0.1, 0.95),
    trustBundlePollMs: r.num(o, "trustBundlePollMs", p, 1000, 50, 3_600_000),
  };
  if (identity.spiffeId !== undefined && !identity.spiffeId.startsWith("spiffe://")) {
    r.errors.push(`${p}.spiffeId: expected spiffe://trust-domain/path, got "${identity.spiffeId}"`);
  }
  return identity;
}

/** admin.appProbes: JSON text (from TRELLIS_PROXY_APP_PROBES) or an object (from a config file). */
function readAppProbes(r: Reader, admin: Raw | undefined): Record<string, AppProbe> {
  const raw = admin?.appProbes;
  if (raw === undefined) return {};
  try {
    return parseAppProbes(typeof raw === "string" ? raw : JSON.stringify(raw));
  } catch (err) {
    r.errors.push(`admin.appProbes: ${(err as Error).message}`);
    return {};
  }
}

const logLevels = ["debug", "info", "warn", "error", "silent"] as const;

/** Validates a raw configuration object. Returns every problem found, or the typed config. */
export function parseConfig(
  raw: unknown,
): { ok: true; config: ProxyConfig } | { ok: false; errors: string[] } {
  const r = new Reader();
  const root = r.obj(raw, "config") ?? {};
  const admin = r.obj(root.admin, "admin");
  const inbound = r.obj(root.inbound, "inbound");
  const outbound = r.obj(root.outbound, "outbound");
  const destination = r.obj(root.destination, "destination");
  const balancer = r.obj(root.balancer, "balancer");
  const retries = r.obj(root.retries, "retries");
  const logLevel = r.str(root, "logLevel", "config", false) ?? "info";
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    r.errors.push(`config.logLevel: expected one of ${logLevels.join(", ")}, got "${logLevel}"`);
  }
  const capture = r.bool(root, "capture", "config", false);
  const config: ProxyConfig = {
    admin: {
      listen: r.hostPort(admin, "listen", "admin", false) ?? { host: "127.0.0.1", port: 4191 },
      appProbes: readAppProbes(r, admin),
    },
    capture,
    inbound: inbound && {
      listen: r.hostPort(inbound, "listen", "inbound", true) ?? { host: "", port: 0 },
      app: r.hostPort(inbound, "app", "inbound", !capture),
      allowPlaintext: r.bool(inbound, "allowPlaintext", "inbound", false),
      plaintextPorts: r.ports(inbound, "plaintextPorts", "inbound", []),
      authorizedIdentities: r.strList(inbound, "authorizedIdentities", "inbound"),
      opaquePorts: r.ports(inbound, "opaquePorts", "inbound", defaultOpaquePorts),
    },
    outbound: outbound && {
      listen: r.hostPort(outbound, "listen", "outbound", true) ?? { host: "", port: 0 },
      opaqueAuthority: r.str(outbound, "opaqueAuthority", "outbound", false),
      podNamespace: r.str(outbound, "podNamespace", "outbound", false),
      clusterDomain: r.str(outbound, "clusterDomain", "outbound", false) ?? "cluster.local",
      opaquePorts: r.ports(outbound, "opaquePorts", "outbound", defaultOpaquePorts),
    },
    identity: readIdentity(r, r.obj(root.identity, "identity")),
    destination: destination && {
      url: r.url(destination, "url", "destination", true) ?? "",
      serverIdentity: r.str(destination, "serverIdentity", "destination", false),
    },
    limits: readLimits(r, r.obj(root.limits, "limits")),
    balancer: {
      defaultRttMs: r.num(balancer, "defaultRttMs", "balancer", 30, 0.001, 60_000),
      decayMs: r.num(balancer, "decayMs", "balancer", 10_000, 1, 3_600_000),
    },
    retries: {
      maxAttempts: r.num(retries, "maxAttempts", "retries", 3, 1, 10),
      maxBufferedBodyBytes: r.num(retries, "maxBufferedBodyBytes", "retries", 64 * 1024, 0, 16 * 1024 * 1024),
    },
    logLevel: logLevel as ProxyConfig["logLevel"],
  };
  if (!config.inbound && !config.outbound) r.errors.push("config: configure inbound, outbound or both");
  if (config.outbound && capture && isWildcard(config.outbound.listen.host)) {
    r.errors.push(
      `outbound.listen: with capture it must be a loopback address (127.0.0.1:4140), not "${config.outbound.listen.host}": anyone reaching it would speak with this pod's identity`,
    );
  }
  if (config.inbound && !config.inbound.allowPlaintext && !config.identity) {
    r.errors.push(
      "inbound: without identity only plaintext is possible; set inbound.allowPlaintext or identity",
    );
  }
  return r.errors.length > 0 ? { ok: false, errors: r.errors } : { ok: true, config };
}
