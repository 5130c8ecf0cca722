/**
 * Where configuration comes from: an optional JSON file named by TRELLIS_PROXY_CONFIG, with
 * individual TRELLIS_PROXY_* environment variables layered on top (env wins).
 *
 * Owns: the env variable names and the merge. Does not validate (config.ts).
 */
import { readFileSync } from "node:fs";

/** Environment variable → dotted path in the JSON config. */
export const envSettings: Readonly<Record<string, string>> = {
  TRELLIS_PROXY_ADMIN_LISTEN: "admin.listen",
  TRELLIS_PROXY_APP_PROBES: "admin.appProbes",
  TRELLIS_PROXY_CAPTURE: "capture",
  TRELLIS_PROXY_INBOUND_LISTEN: "inbound.listen",
  TRELLIS_PROXY_INBOUND_APP: "inbound.app",
  TRELLIS_PROXY_INBOUND_ALLOW_PLAINTEXT: "inbound.allowPlaintext",
  TRELLIS_PROXY_INBOUND_PLAINTEXT_PORTS: "inbound.plaintextPorts",
  TRELLIS_PROXY_INBOUND_AUTHORIZED_IDENTITIES: "inbound.authorizedIdentities",
  TRELLIS_PROXY_INBOUND_OPAQUE_PORTS: "inbound.opaquePorts",
  TRELLIS_PROXY_OUTBOUND_LISTEN: "outbound.listen",
  TRELLIS_PROXY_OUTBOUND_OPAQUE_AUTHORITY: "outbound.opaqueAuthority",
  TRELLIS_PROXY_POD_NAMESPACE: "outbound.podNamespace",
  TRELLIS_PROXY_CLUSTER_DOMAIN: "outbound.clusterDomain",
  TRELLIS_PROXY_OUTBOUND_OPAQUE_PORTS: "outbound.opaquePorts",
  TRELLIS_PROXY_IDENTITY_URL: "identity.url",
  TRELLIS_PROXY_IDENTITY_TOKEN_PATH: "identity.tokenPath",
  TRELLIS_PROXY_IDENTITY_SPIFFE_ID: "identity.spiffeId",
  TRELLIS_PROXY_IDENTITY_SERVER_IDENTITY: "identity.serverIdentity",
  TRELLIS_PROXY_TRUST_BUNDLE_PATH: "identity.trustBundlePath",
  TRELLIS_PROXY_DESTINATION_URL: "destination.url",
  TRELLIS_PROXY_DESTINATION_SERVER_IDENTITY: "destination.serverIdentity",
  TRELLIS_PROXY_MAX_CONNECTIONS: "limits.maxConnections",
  TRELLIS_PROXY_MEMORY_RELEASE_INTERVAL_MS: "limits.memoryReleaseIntervalMs",
  TRELLIS_PROXY_LOG_LEVEL: "logLevel",
};

function setPath(root: Record<string, unknown>, path: string, value: string): void {
  const keys = path.split(".");
  let node = root;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      node = next as Record<string, unknown>;
    } else {
      const fresh: Record<string, unknown> = {};
      node[key] = fresh;
      node = fresh;
    }
  }
  node[keys[keys.length - 1]!] = value;
}

/** Reads the file (if any) and applies env overrides; throws with a readable message. */
export function loadRawConfig(env: NodeJS.ProcessEnv): unknown {
  let raw: unknown = {};
  const file = env.TRELLIS_PROXY_CONFIG;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new Error(`cannot read config file ${file}: ${(err as Error).message}`);
    }
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new Error(`config file ${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new Error(`config file ${file} must hold a JSON object`);
  }
  const root = raw as Record<string, unknown>;
  for (const [name, path] of Object.entries(envSettings)) {
    const value = env[name];
    if (value !== undefined && value !== "") setPath(root, path, value);
  }
  return root;
}
