/**
 * Test fixture: everything the differential framing harness runs against — node:http as the
 * reference, and two routes through real proxy processes to node:http applications: the
 * plaintext inbound listener, and the mTLS pair (outbound → mTLS → inbound, mesh-pair.ts).
 */
import {
  compare,
  type Reading,
  RecordingServer,
  readDirectly,
  readThroughProxy,
  type Verdict,
} from "./framing-harness.ts";
import { startMeshPair } from "./mesh-pair.ts";

export interface FramingRig {
  /** The Host the corpus's `{H}` stands for. */
  host: string;
  routes: readonly string[];
  /** Sends `input` to the reference and through every route; one verdict per route. */
  check(input: Buffer): Promise<{ reference: Reading; verdicts: [string, Verdict][]; retried: boolean }>;
  close(): Promise<void>;
}

export async function startFramingRig(): Promise<FramingRig> {
  const host = "web.default.svc.cluster.local:80";
  const reference = new RecordingServer();
  const edgeApp = new RecordingServer();
  const meshApp = new RecordingServer();
  const [referencePort, edgePort, meshPort] = await Promise.all([
    reference.listen(),
    edgeApp.listen(),
    meshApp.listen(),
  ]);
  const pair = await startMeshPair("differential", `127.0.0.1:${meshPort}`, {
    inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${edgePort}`, allowPlaintext: true },
  }).catch(async (err) => {
    await Promise.all([reference.close(), edgeApp.close(), meshApp.close()]);
    throw err;
  });
  const close = async () => {
    await pair.close();
    await Promise.all([reference.close(), edgeApp.close(), meshApp.close()]);
  };
  const routes = [
    { name: "plaintext inbound", port: pair.beside.ports.inbound!, app: edgeApp },
    { name: "mTLS pair", port: pair.outboundPort, app: meshApp },
  ];
  return {
    host,
    routes: routes.map((r) => r.name),
    async check(input) {
      const run = async () => {
        const ref = await readDirectly(reference, referencePort, input);
        const verdicts = await Promise.all(
          routes.map(
            async (r): Promise<[string, Verdict]> => [
              r.name,
              compare(ref, await readThroughProxy(r.app, r.port, input)),
            ],
          ),
        );
        return { reference: ref, verdicts, retried: false };
      };
      const first = await run();
      if (!first.verdicts.some(([, v]) => v.kind === "fail")) return first;
      // An exchange the previous input left behind (an aborted request still reaching its
      // application) can land in this one's window. Framing bugs are deterministic: a failure
      // counts only if it repeats once everything is quiet.
      await Promise.all(routes.map((r) => r.app.quiet(100)));
      return { ...(await run()), retried: true };
    },
    close,
  };
}
