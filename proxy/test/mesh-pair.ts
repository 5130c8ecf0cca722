/**
 * Test fixture: an mTLS pair of real proxies in front of one application — a client proxy's
 * outbound listener, mutual TLS, a server proxy's inbound listener that admits only the client —
 * plus a third proxy started beside them. The fake destination service answers every authority
 * with the server, so a (possibly mangled) Host is never dialled directly.
 */
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { type ProxyProcess, spawnProxy } from "./proxy-process.ts";

const td = "spiffe://cluster.local/ns/default/sa";
const admin = { listen: "127.0.0.1:0" };

export interface MeshPair {
  /** The client proxy's outbound port: send requests here. */
  outboundPort: number;
  /** The extra proxy started beside the pair. */
  beside: ProxyProcess;
  close(): Promise<void>;
}

/** `app` is host:port of the application behind the server proxy; `beside` configures a third proxy. */
export async function startMeshPair(name: string, app: string, beside: object): Promise<MeshPair> {
  const mesh: MeshFixture = await startMeshFixture(name, { client: `${td}/client`, server: `${td}/server` });
  const processes: ProxyProcess[] = [];
  const close = async () => {
    await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    await mesh.close();
  };
  try {
    const [other, server] = await Promise.all([
      spawnProxy({ admin, ...beside }),
      spawnProxy({
        inbound: { listen: "127.0.0.1:0", app, authorizedIdentities: [`${td}/client`] },
        admin,
        identity: mesh.identityConfig("server"),
      }),
    ]);
    processes.push(other, server);
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
    return { outboundPort: client.ports.outbound!, beside: other, close };
  } catch (err) {
    await close();
    throw err;
  }
}
