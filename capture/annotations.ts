// The capture annotations a user puts on a pod or its namespace, under `config.trellis.dev/`,
// and the one function that turns them into a pod's capture settings and opaque ports.
//
// The rule for bad input: a pod is meshed with every capture setting it asked for, or with the
// defaults for all of them — never with some annotations applied and others dropped. So any
// value that does not parse refuses all four, and the problems are returned for the injector
// to report (admission warning and Event). The pod's own annotation wins over its namespace's,
// key by key. Pure; the injector, the destination service and a CNI plugin read pods the same way.
import {
  type CaptureSettings,
  defaultCaptureSettings,
  mergePortRanges,
  type Parsed,
  type PortRange,
  parseCidrList,
  parsePortList,
} from "./capture-settings.ts";

export const CAPTURE_ANNOTATIONS = {
  skipInboundPorts: "config.trellis.dev/skip-inbound-ports",
  skipOutboundPorts: "config.trellis.dev/skip-outbound-ports",
  skipSubnets: "config.trellis.dev/skip-subnets",
  opaquePorts: "config.trellis.dev/opaque-ports",
} as const;

/**
 * Ports where the server speaks first or the protocol is not HTTP: never wait to detect a
 * protocol on them (SMTP, submission, MySQL, Galera, PostgreSQL, Redis, Elasticsearch transport,
 * memcached) — the list mature meshes use.
 */
export const DEFAULT_OPAQUE_PORTS: readonly PortRange[] = [25, 587, 3306, 4444, 5432, 6379, 9300, 11211].map(
  (p) => ({ from: p, to: p }),
);

export interface PodCapture {
  settings: CaptureSettings;
  /** The pod's opaque ports: the annotation's list when set, else DEFAULT_OPAQUE_PORTS. */
  opaquePorts: PortRange[];
  /** Which annotations were applied, and from where ("pod" or "namespace"). */
  applied: Partial<Record<keyof typeof CAPTURE_ANNOTATIONS, "pod" | "namespace">>;
  /** Problems that made the pod fall back to the defaults; empty when all was well. */
  problems: string[];
}

type Key = keyof typeof CAPTURE_ANNOTATIONS;

/** The pod's capture settings from its own and its namespace's annotations. */
export function podCaptureOf(
  podAnnotations: Record<string, string> | undefined,
  namespaceAnnotations: Record<string, string> | undefined,
): PodCapture {
  const problems: string[] = [];
  const applied: PodCapture["applied"] = {};
  const read = <T>(key: Key, parse: (text: string) => Parsed<T>): T | undefined => {
    const name = CAPTURE_ANNOTATIONS[key];
    const fromPod = podAnnotations?.[name];
    const source = fromPod !== undefined ? "pod" : "namespace";
    const text = fromPod ?? namespaceAnnotations?.[name];
    if (text === undefined) return undefined;
    const parsed = parse(text);
    if (!parsed.ok) {
      problems.push(`${name} on the ${source}: ${parsed.error}`);
      return undefined;
    }
    applied[key] = source;
    return parsed.value;
  };
  const skipInbound = read("skipInboundPorts", parsePortList);
  const skipOutbound = read("skipOutboundPorts", parsePortList);
  const skipSubnets = read("skipSubnets", parseCidrList);
  const opaque = read("opaquePorts", parsePortList);
  const settings = defaultCaptureSettings();
  if (problems.length > 0) {
    return { settings, opaquePorts: [...DEFAULT_OPAQUE_PORTS], applied: {}, problems };
  }
  settings.skipInboundPorts = mergePortRanges([...settings.skipInboundPorts, ...(skipInbound ?? [])]);
  settings.skipOutboundPorts = skipOutbound ?? [];
  settings.skipSubnets = skipSubnets ?? [];
  return { settings, opaquePorts: opaque ?? [...DEFAULT_OPAQUE_PORTS], applied, problems };
}
