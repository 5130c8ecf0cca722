/**
 * The differential framing test (issue 18): every case of the corpus (framing-corpus.ts) goes to
 * node:http (llhttp, the reference) and through real proxies — the plaintext inbound listener,
 * and the mTLS pair (outbound → mTLS → inbound) — to a node:http application; any input the
 * reference refuses that a proxy forwards, or that they split into different messages, fails
 * (framing-harness.ts). bench/framing-mutation.ts runs the same harness on seeded random
 * mutations of this corpus.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { caseBytes, framingCorpus } from "./framing-corpus.ts";
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
const web = "web.default.svc.cluster.local:80";

describe("HTTP/1.1 framing against node:http (differential)", () => {
  let mesh: MeshFixture;
  const reference = new RecordingServer();
  const edgeApp = new RecordingServer();
  const meshApp = new RecordingServer();
  let ports: { reference: number; edgeApp: number; meshApp: number };
  let edge: ProxyProcess;
  let server: ProxyProcess;
  let client: ProxyProcess;

  before(async () => {
    mesh = await startMeshFixture("differential", { client: `${td}/client`, server: `${td}/server` });
    const [r, e, m] = await Promise.all([reference.listen(), edgeApp.listen(), meshApp.listen()]);
    ports = { reference: r, edgeApp: e, meshApp: m };
    const admin = { listen: "127.0.0.1:0" };
    [edge, server] = await Promise.all([
      spawnProxy({ inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${e}`, allowPlaintext: true }, admin }),
      spawnProxy({
        inbound: { listen: "127.0.0.1:0", app: `127.0.0.1:${m}`, authorizedIdentities: [`${td}/client`] },
        admin,
        identity: mesh.identityConfig("server"),
      }),
    ]);
    mesh.destination.set(web, {
      endpoints: [{ address: "127.0.0.1", port: server.ports.inbound!, identity: `${td}/server` }],
    });
    client = await spawnProxy({
      outbound: { listen: "127.0.0.1:0" },
      admin,
      identity: mesh.identityConfig("client"),
      destination: { url: mesh.destination.url },
    });
  });

  after(async () => {
    await Promise.all([edge, server, client].map((p) => p?.stop("SIGKILL")));
    await Promise.all([reference.close(), edgeApp.close(), meshApp.close(), mesh?.close()]);
  });

  it("reads every case of the corpus as node:http does, or refuses it", async (t) => {
    const corpus = framingCorpus();
    const tally = new Map<string, number>();
    const failures: string[] = [];
    const noted = new Set<string>();
    const routes = [
      { name: "plaintext inbound", port: () => edge.ports.inbound!, app: edgeApp },
      { name: "mTLS pair", port: () => client.ports.outbound!, app: meshApp },
    ];
    for (const c of corpus) {
      const input = caseBytes(c, web);
      const ref: Reading = await readDirectly(reference, ports.reference, input);
      const verdicts = await Promise.all(
        routes.map(
          async (route): Promise<[string, Verdict]> => [
            route.name,
            compare(ref, await readThroughProxy(route.app, route.port(), input)),
          ],
        ),
      );
      for (const [route, v] of verdicts) {
        tally.set(v.kind, (tally.get(v.kind) ?? 0) + 1);
        if (v.kind === "stricter" || v.kind === "extension-method")
          noted.add(`${v.kind} — ${c.name}: ${v.detail}`);
        if (v.kind === "fail")
          failures.push(
            `${c.name} (${route}): ${v.detail}\n  input: ${JSON.stringify(input.toString("latin1"))}`,
          );
      }
    }
    t.diagnostic(
      `${corpus.length} cases × ${routes.length} routes: ${JSON.stringify(Object.fromEntries(tally))}`,
    );
    for (const n of noted) t.diagnostic(n);
    assert.deepEqual(failures, [], failures.join("\n"));
    // The corpus holds valid requests: most cases must be read the same, not all refused.
    assert.ok((tally.get("same") ?? 0) > corpus.length / 2, JSON.stringify(Object.fromEntries(tally)));
  });
});
