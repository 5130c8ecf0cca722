// Keeps the identity service's issuer current: reads the issuer Secret (GET, every `intervalMs`;
// the service's RBAC allows exactly that one Secret), and when its data changed and passes the
// checks in issuer.ts, switches to it at once — a renewal or an anchor rotation needs no restart.
// A Secret that fails the checks is refused and the previous issuer kept; each outcome is logged
// once per change of the Secret, not once per poll. Never logs key material.
// Owns the polling and the switch; does not own what makes an issuer valid (issuer.ts).
import type { Logger } from "pino";
import type { IdentityMetrics } from "./identity-metrics.ts";
import { type Issuer, type IssuerSecretData, issuerFromSecret } from "./issuer.ts";

/** Reads the Secret's data (PEM texts); rejects when it cannot be read. */
export type ReadIssuerSecret = () => Promise<IssuerSecretData>;

export class IssuerSource {
  private issuer: Issuer | undefined;
  private lastData = "";
  private lastProblem = "";
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(issuer: Issuer) => void> = [];

  constructor(
    private readonly read: ReadIssuerSecret,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly metrics: Pick<IdentityMetrics, "issuerReloads" | "issuerExpiry">,
  ) {}

  get current(): Issuer | undefined {
    return this.issuer;
  }

  onChange(listener: (issuer: Issuer) => void): void {
    this.listeners.push(listener);
  }

  /** Reads once now and then every interval; resolves after the first read, loaded or not. */
  async start(): Promise<void> {
    await this.poll();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
  }

  /** Resolves once an issuer is loaded (polling faster than the interval until then). */
  async waitForIssuer(retryMs: number): Promise<Issuer> {
    while (this.issuer === undefined) {
      await new Promise((resolve) => setTimeout(resolve, retryMs));
      if (this.issuer === undefined) await this.poll();
    }
    return this.issuer;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One read of the Secret; exported for tests that do not want to wait for the timer. */
  async poll(): Promise<void> {
    let data: IssuerSecretData;
    try {
      data = await this.read();
    } catch (err) {
      this.problem(
        "error",
        `cannot read the issuer Secret: ${err instanceof Error ? err.message : String(err)}`,
      );
      return;
    }
    const text = `${data["tls.crt"] ?? ""}\0${data["tls.key"] ?? ""}\0${data["ca.crt"] ?? ""}`;
    if (text === this.lastData) return;
    let next: Issuer;
    try {
      next = issuerFromSecret(data);
    } catch (err) {
      this.problem("invalid", `the issuer Secret is not usable, keeping the current issuer: ${String(err)}`);
      return;
    }
    this.lastData = text;
    this.lastProblem = "";
    const previous = this.issuer?.fingerprint;
    this.issuer = next;
    this.metrics.issuerReloads.inc({ result: "loaded" });
    this.metrics.issuerExpiry.set({}, Math.floor(next.notAfter.getTime() / 1000));
    this.logger.info(
      {
        issuer: next.fingerprint,
        previous,
        notAfter: next.notAfter.toISOString(),
        anchors: next.anchorsDer.length,
      },
      previous === undefined ? "issuer loaded" : "issuer changed",
    );
    for (const listener of this.listeners) listener(next);
  }

  private problem(result: "error" | "invalid", message: string): void {
    this.metrics.issuerReloads.inc({ result });
    if (message === this.lastProblem) return;
    this.lastProblem = message;
    this.logger.warn({ result }, message);
  }
}
