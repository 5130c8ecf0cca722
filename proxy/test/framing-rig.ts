/**
 * Test fixture: everything the differential framing harness runs against — node:http as the
 * reference, and two routes through real proxy processes to node:http applications: the
 * plaintext inbound listener, and the mTLS pair (outbound → mTLS → inbound). The fake destination
 * service answers every authority with the pair's server, so a mangled Host is never dialled.
 */
import {
  compare,
  type Reading,
  RecordingServer,
  readDirectly,
  readThroughProxy,
  type Verdict,
} from "./framing-harness.ts";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { type ProxyProcess, spawnProxy } from "./proxy-process.ts";

const td = "spiffe://cluster.local/ns/default/sa";

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
  const mesh: MeshFixture = await startMeshFixture("differential", {
    client: `${td}/client`,
    server: `${td}/server`,
  });
  const admin = { listen: "127.0.0.1:0" };
  const processes: ProxyProcess[] = [];
  const close = async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await Promise.all([reference.close(), edgeApp.close(), meshApp.close(), mesh.close()]);
  };
  try {
    const [edge, server] = await Promise.all([
      spawnProxy({
        inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${edgePort}`, allowPlaintext: true },
        admin,
      }),
      spawnProxy({
        inbound: {
          listen: "127.0.0.1:0",
          app: `127.0.0.1:${meshPort}`,
          authorizedIdentities: [`${td}/client`],
        },
        admin,
        identity: mesh.identityConfig("server"),
      }),
    ]);
    processes.push(edge, server);
    mesh.destination.fallback = {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
      routes: [],
      retryBudget: undefined,
    };
    const client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      admin,
      identity: mesh.identityConfig("client"),
      destination: { url: mesh.destination.url },
    });
    processes.push(client);
    const routes = [
      { name: "plaintext inbound", port: edge.ports.inbound!, app: edgeApp },
      { name: "mTLS pair", port: client.ports.outbound!, app: meshApp },
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
  } catch (err) {
    await close();
    throw err;
  }
}
