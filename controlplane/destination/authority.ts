// Parsing a watched authority (`host:port`) into the Service it names. Accepts the forms a
// client inside the cluster may use: `web.shop.svc.cluster.local:8080` (with the configured
// cluster domain), `web.shop.svc:8080` and `web.shop:8080`. Owns the name rules only; whether
// the Service exists is the caller's question.

export interface ServiceAuthority {
  namespace: string;
  name: string;
  port: number;
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The Service an authority names, or undefined when it is not a Service name at all. */
export function parseAuthority(
  authority: string,
  clusterDomain = "cluster.local",
): ServiceAuthority | undefined {
  const colon = authority.lastIndexOf(":");
  if (colon <= 0) return undefined;
  const portText = authority.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  let host = authority.slice(0, colon).toLowerCase().replace(/\.$/, "");
  const fullSuffix = `.svc.${clusterDomain}`;
  if (host.endsWith(fullSuffix)) host = host.slice(0, -fullSuffix.length);
  else if (host.endsWith(".svc")) host = host.slice(0, -".svc".length);
  const labels = host.split(".");
  if (labels.length !== 2) return undefined;
  const [name = "", namespace = ""] = labels;
  if (!dnsLabel.test(name) || !dnsLabel.test(namespace)) return undefined;
  return { namespace, name, port };
}

/** The ServiceProfile name for a Service, as in Linkerd: its fully qualified DNS name. */
export function profileName(service: ServiceAuthority, clusterDomain = "cluster.local"): string {
  return `${service.name}.${service.namespace}.svc.${clusterDomain}`;
}

/** A watched authority that is an address: `10.0.0.7:8080` or `[fd00::7]:8080`. */
export interface AddressAuthority {
  ip: string;
  port: number;
}

const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The address an authority names, or undefined when it is not `ip:port`. */
export function parseAddressAuthority(authority: string): AddressAuthority | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(authority);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[2] !== undefined) return ipv4.test(m[2]) ? { ip: m[2], port } : undefined;
  const ip = m[1]!.toLowerCase();
  return ip.includes(":") ? { ip, port } : undefined;
}
