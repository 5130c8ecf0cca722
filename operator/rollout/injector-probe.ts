// Is the injector serving? A repair must not restart workloads while it is not: their new pods
// would come back without a proxy. Its webhook must be registered, and in a cluster the
// injector's Deployment says whether it serves (the Mesh's
// status.controlPlane.components); when the operator is told the injector's URL (development,
// tests: the injector runs beside the operator), it asks the webhook itself: any HTTP answer to
// an empty review (400) means it serves, a refused or timed-out connection that it does not.
// Results are kept PROBE_TTL_MS; one probe at a time.
import { request } from "node:https";
import type { Mesh } from "../../api/index.ts";

/** Short: a repair must not start on a stale "up" just after the injector stopped. */
const PROBE_TTL_MS = 1_000;
const PROBE_TIMEOUT_MS = 2_000;

export class InjectorProbe {
  private last: { up: boolean; at: number } | undefined;
  private inFlight: Promise<boolean> | undefined;

  constructor(private readonly url: string | undefined) {}

  /** `registered`: the Mesh's MutatingWebhookConfiguration exists (without it nothing calls the injector). */
  async ready(mesh: Pick<Mesh, "status">, registered: boolean): Promise<boolean> {
    if (!registered) return false;
    const component = mesh.status?.controlPlane?.components?.find((c) => c.name === "injector");
    if (component && !component.ready) return false;
    if (!this.url) return component !== undefined;
    if (this.last && Date.now() - this.last.at < PROBE_TTL_MS) return this.last.up;
    this.inFlight ??= this.probe(this.url).then((up) => {
      this.last = { up, at: Date.now() };
      this.inFlight = undefined;
      return up;
    });
    return this.inFlight;
  }

  private probe(url: string): Promise<boolean> {
    return new Promise((resolve) => {
      // Liveness only: nothing secret is sent, so the serving certificate is not checked here.
      const req = request(
        url,
        { method: "POST", rejectUnauthorized: false, timeout: PROBE_TIMEOUT_MS },
        (res) => {
          res.resume();
          resolve(true);
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => resolve(false));
      req.end("{}");
    });
  }
}
