/**
 * Power-of-two-choices load balancing over peak-EWMA endpoint loads.
 *
 * Owns: the endpoint set of one service and its per-endpoint load state, kept across
 * discovery updates for endpoints that stay. Does not connect anywhere (client-*.ts).
 */
import { PeakEwma, type PeakEwmaParams } from "./peak-ewma.ts";

export interface EndpointSpec {
  address: string;
  port: number;
  /** Expected SPIFFE ID of the proxy at this endpoint; absent means not meshed (plaintext). */
  identity?: string;
  /**
   * Meshed endpoints: the application port in the peer's pod, carried in the transport header
   * (the endpoint's `port` is then the peer proxy's inbound port).
   */
  targetPort?: number;
}

export interface Endpoint extends EndpointSpec {
  readonly key: string;
  readonly ewma: PeakEwma;
}

export function endpointKey(e: EndpointSpec): string {
  return `${e.address}:${e.port}>${e.targetPort ?? ""}#${e.identity ?? ""}`;
}

export class Balancer {
  private endpoints: Endpoint[] = [];

  constructor(
    private readonly ewmaParams: PeakEwmaParams,
    private readonly random: () => number = Math.random,
  ) {}

  get size(): number {
    return this.endpoints.length;
  }

  list(): readonly Endpoint[] {
    return this.endpoints;
  }

  /** Replaces the endpoint set, keeping load state for endpoints that remain. */
  update(specs: readonly EndpointSpec[]): void {
    const old = new Map(this.endpoints.map((e) => [e.key, e]));
    const next: Endpoint[] = [];
    const seen = new Set<string>();
    for (const s of specs) {
      const key = endpointKey(s);
      if (seen.has(key)) continue;
      seen.add(key);
      next.push(old.get(key) ?? { ...s, key, ewma: new PeakEwma(this.ewmaParams) });
    }
    this.endpoints = next;
  }

  /** Picks the cheaper of two random endpoints, avoiding `exclude` while others remain. */
  pick(exclude?: ReadonlySet<string>): Endpoint | undefined {
    let candidates = this.endpoints;
    if (exclude !== undefined && exclude.size > 0) {
      const rest = candidates.filter((e) => !exclude.has(e.key));
      if (rest.length > 0) candidates = rest;
    }
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) return candidates[0];
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    return a.ewma.load() <= b.ewma.load() ? a : b;
  }
}
