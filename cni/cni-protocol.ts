// The CNI protocol as the trellis-cni plugin speaks it (CNI spec 0.3.0 to 1.1.0): what the
// container runtime passes (CNI_* variables, the network configuration on stdin) and what the
// plugin answers (the result passed on, an error object, a VERSION answer). Pure; no I/O.
// Owns the wire format only. What the plugin does with a request is plugin.ts's.

/** Versions whose results a chained plugin can pass on unchanged. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;

/** The error codes of the CNI spec this plugin uses (1-99 are the spec's, 100+ the plugin's). */
export const CNI_ERRORS = {
  incompatibleVersion: 1,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  /** Capture could not be installed in the pod's network namespace. */
  captureFailed: 100,
  /** CHECK found the capture rules missing or different. */
  captureMissing: 101,
} as const;

export interface CniError {
  code: number;
  msg: string;
  details?: string;
}

/** The part of a previous plugin's result the plugin reads: the pod's addresses. */
export interface PreviousResult {
  cniVersion?: string;
  ips?: Array<{ address?: string; version?: string }>;
  [field: string]: unknown;
}

export interface NetworkConfig {
  cniVersion: string;
  name?: string;
  type?: string;
  prevResult?: PreviousResult;
  runtimeConfig?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface CniRequest {
  command: string;
  containerId: string;
  /** Path of the pod's network namespace; empty when the runtime gave none. */
  netns: string;
  ifname: string;
  /** CNI_ARGS as a map (K8S_POD_NAMESPACE, K8S_POD_NAME, ...). */
  args: Record<string, string>;
  config: NetworkConfig;
}

/** "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=web-0" → a map. */
export function parseCniArgs(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? "").split(";")) {
    const eq = pair.indexOf("=");
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** The request from the environment and stdin; an error when the runtime broke the protocol. */
export function parseRequest(
  env: Record<string, string | undefined>,
  stdin: string,
): { ok: true; request: CniRequest } | { ok: false; error: CniError } {
  const command = env.CNI_COMMAND ?? "";
  if (command === "") {
    return { ok: false, error: { code: CNI_ERRORS.invalidEnvironment, msg: "CNI_COMMAND is not set" } };
  }
  let config: NetworkConfig = { cniVersion: "1.0.0" };
  if (stdin.trim() !== "") {
    try {
      const parsed: unknown = JSON.parse(stdin);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not a JSON object");
      config = parsed as NetworkConfig;
    } catch (err) {
      return {
        ok: false,
        error: {
          code: CNI_ERRORS.decodeFailure,
          msg: "the network configuration on stdin is not a JSON object",
          details: (err as Error).message,
        },
      };
    }
  } else if (command !== "VERSION") {
    return { ok: false, error: { code: CNI_ERRORS.decodeFailure, msg: "no network configuration on stdin" } };
  }
  if (typeof config.cniVersion !== "string") config = { ...config, cniVersion: "1.0.0" };
  return {
    ok: true,
    request: {
      command,
      containerId: env.CNI_CONTAINERID ?? "",
      netns: env.CNI_NETNS ?? "",
      ifname: env.CNI_IFNAME ?? "",
      args: parseCniArgs(env.CNI_ARGS),
      config,
    },
  };
}

/** The answer to VERSION. */
export function versionAnswer(cniVersion = "1.1.0"): string {
  return JSON.stringify({ cniVersion, supportedVersions: SUPPORTED_VERSIONS });
}

/** The error object a plugin prints on stdout before exiting non-zero. */
export function errorAnswer(cniVersion: string, error: CniError): string {
  return JSON.stringify({ cniVersion, ...error });
}

/**
 * A chained plugin's ADD result: the previous plugin's result, unchanged but for the version
 * field, which must be the configuration's.
 */
export function passedResult(config: NetworkConfig): string {
  return JSON.stringify({ ...config.prevResult, cniVersion: config.cniVersion });
}

/** The IP families the previous plugins gave the pod (0.3.0 results carry `version`). */
export function addressFamilies(result: PreviousResult | undefined): Array<4 | 6> {
  const families = new Set<4 | 6>();
  for (const ip of result?.ips ?? []) {
    if (ip.version === "6" || ip.address?.includes(":")) families.add(6);
    else if (ip.version === "4" || ip.address) families.add(4);
  }
  return [...families].sort();
}
