/**
 * Transparent capture, end to end through real nat REDIRECT rules: applications that know
 * nothing of the mesh, in network namespaces with the injector's rules, call a Service
 * ClusterIP, a pod IP, an unmeshed pod and a server-first protocol; real proxy processes (UID
 * 2102, capture mode) read each connection's original destination and carry it across mTLS.
 *
 * Pods (IPv4 and IPv6): a (meshed client), b (meshed server: two "containers" on 8080 and 9090, a server-first
 * protocol on 6379, a loopback-only listener on 7070), c (unmeshed client), d (unmeshed server).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { buildNativeAddon } from "../../hack/build-native.ts";
import { generateKeyPair, privateKeyToPem } from "../../pki/index.ts";
import { encodeTransportHeader, transportAlpn } from "../transport-header.ts";
import { type MeshFixture, startMeshFixture } from "./mesh-fixture.ts";
import { issueFor } from "./mesh-pki.ts";
import { NetnsLab, type Pod, PROXY_UID, startIn, unavailable } from "./netns-lab.ts";
import { metricValue, waitFor } from "./proxy-process.ts";

const skip = unavailable();
const clientId = "spiffe://cluster.local/ns/demo/sa/client";
const serverId = "spiffe://cluster.local/ns/demo/sa/server";
type Agent = (path: string, command: object) => Promise<Record<string, unknown>>;

// Bounded, so that nothing here can hold a CI run: every step waits for a condition, not a time.
describe("transparent capture through nat rules", { skip, timeout: 240_000 }, () => {
  let mesh: MeshFixture;
  let lab: NetnsLab;
  let a: Pod;
  let b: Pod;
  let c: Pod;
  let d: Pod;
  let inA: Agent;
  let inB: Agent;
  let inC: Agent;
  let clusterIp: string;
  let redisIp: string;

  const startProxy = async (pod: Pod, workload: string, relays: { id: number; dest: number }) => {
    const config = {
      logLevel: "info",
      capture: true,
      admin: { listen: "0.0.0.0:4191" },
      inbound: { listen: "0.0.0.0:4143", allowPlaintext: true },
      outbound: { listen: "127.0.0.1:4140", podNamespace: "demo" },
      identity: { ...mesh.identityConfig(workload), url: `https://127.0.0.1:${relays.id}` },
      destination: { url: `https://127.0.0.1:${relays.dest}` },
      // Longer than any wait below: a server-first protocol must not wait for detection.
      limits: { detectTimeoutMs: 30_000 },
    };
    const file = join(lab.dir, `${pod.name}-proxy.json`);
    writeFileSync(file, JSON.stringify(config), { mode: 0o644 });
    lab.track(
      await startIn(pod.ns, [process.execPath, "--import", "tsx", "proxy/main.ts"], {
        uid: PROXY_UID,
        env: { TRELLIS_PROXY_CONFIG: file },
        readyPattern: /proxy started/,
      }),
    );
  };

  const metrics = async (agent: Agent) =>
    String(((await agent("/fetch", { url: "http://127.0.0.1:4191/metrics" })) as { body: string }).body);

  const fetchJson = async (agent: Agent, url: string, h2 = false) => {
    const r = (await agent("/fetch", { url, h2 })) as { status: number; body: string; error?: string };
    assert.equal(r.error, undefined, `${url}: ${r.error}`);
    return { status: r.status, app: r.status === 200 ? (JSON.parse(r.body) as Record<string, unknown>) : {} };
  };

  before(
    async () => {
      buildNativeAddon();
      mesh = await startMeshFixture("capture", { client: clientId, server: serverId });
      lab = new NetnsLab();
      a = lab.addPod("a", true);
      b = lab.addPod("b", true);
      c = lab.addPod("c", false);
      d = lab.addPod("d", false);
      clusterIp = `${lab.serviceNet}.10`;
      redisIp = `${lab.serviceNet}.11`;
      const idSock = await lab.bridgeToHost(mesh.identity.port);
      const destSock = await lab.bridgeToHost(mesh.destination.port);
      const relays = ["--relay", `17001=${idSock}`, "--relay", `17002=${destSock}`];
      inA = await a.agent(relays);
      inB = await b.agent([...relays, "--http", "8080", "--greet", "6379", "--loopback-http", "7070"]);
      await b.agent(["--http", "9090"]); // a second container of the same pod
      inC = await c.agent([]);
      await d.agent(["--http", "8080"]);
      const meshed = (port: number) => [{ address: b.ip, port: 4143, identity: serverId, targetPort: port }];
      mesh.destination.set(`${clusterIp}:8080`, { endpoints: meshed(8080) });
      mesh.destination.set(`${b.ip}:9090`, { endpoints: meshed(9090) });
      mesh.destination.set(`${b.ip}:7070`, { endpoints: meshed(7070) });
      mesh.destination.set(`${redisIp}:6379`, { endpoints: meshed(6379) });
      // Service "server" (by name: a headless Service's pods are b) and its profile.
      mesh.destination.set("server.demo.svc.cluster.local:8080", {
        endpoints: meshed(8080),
        routes: [{ name: "GET any", condition: { method: "GET", pathRegex: "/.*" } }],
      });
      mesh.destination.set(`${b.ip}:8080`, { endpoints: meshed(8080) });
      mesh.destination.set(`[${b.ipv6}]:8080`, {
        endpoints: [{ address: b.ipv6, port: 4143, identity: serverId, targetPort: 8080 }],
      });
      await startProxy(a, "client", { id: 17001, dest: 17002 });
      await startProxy(b, "server", { id: 17001, dest: 17002 });
      for (const agent of [inA, inB]) {
        await waitFor(
          async () =>
            ((await agent("/fetch", { url: "http://127.0.0.1:4191/ready" })) as { status: number }).status ===
            200,
          40_000,
        );
      }
    },
    { timeout: 180_000 },
  );

  after(async () => {
    await lab?.close();
    await mesh?.close();
  });

  it("routes a Service ClusterIP:port to its endpoint over mTLS, HTTP/1.1 and HTTP/2", async () => {
    for (const h2 of [false, true]) {
      const r = await fetchJson(inA, `http://${clusterIp}:8080/`, h2);
      assert.equal(r.status, 200);
      assert.equal(r.app.port, 8080);
      assert.equal(r.app.clientId, clientId, "the server's inbound proxy saw the client's identity");
      assert.equal(r.app.remote, b.ip, "the inbound proxy reaches the application on the pod's own address");
    }
    const outbound = await metrics(inA);
    assert.ok(
      metricValue(outbound, "request_total", {
        direction: "outbound",
        tls: "mtls",
        peer_identity: serverId,
      }) >= 2,
      "the client's outbound proxy counted both requests over mTLS with the server's identity",
    );
    const inbound = await metrics(inB);
    assert.ok(
      metricValue(inbound, "request_total", { direction: "inbound", tls: "mtls", peer_identity: clientId }) >=
        2,
      "the server's inbound proxy counted both requests over mTLS with the client's identity",
    );
  });

  it("routes a pod IP:port to that pod, and reaches the second container's port", async () => {
    const r = await fetchJson(inA, `http://${b.ip}:9090/`);
    assert.equal(r.status, 200);
    assert.equal(r.app.port, 9090);
    assert.equal(r.app.clientId, clientId);
  });

  it("captures IPv6 too: a pod's IPv6 address is reached over mTLS on both sides", async () => {
    const r = await fetchJson(inA, `http://[${b.ipv6}]:8080/`);
    assert.equal(r.status, 200);
    assert.equal(r.app.clientId, clientId);
    assert.equal(r.app.remote, b.ipv6, "the inbound proxy dialled the pod's own IPv6 address");
    const unknown = await fetchJson(inA, `http://[${d.ipv6}]:8080/`);
    assert.equal(unknown.status, 200);
    assert.equal(unknown.app.clientId, null);
    assert.equal(unknown.app.remote, a.ipv6);
  });

  it("takes the profile of the Service Host names for one of its pods, never its endpoints", async () => {
    const r = (await inA("/fetch", { url: `http://${b.ip}:8080/`, headers: { host: "server:8080" } })) as {
      status: number;
      body: string;
    };
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { clientId: string }).clientId, clientId);
    const m = await metrics(inA);
    assert.ok(
      metricValue(m, "request_total", { authority: "server:8080", route: "GET any", tls: "mtls" }) >= 1,
      "the request took the named Service's route",
    );
    // The same Host sent to an address outside that Service goes to that address, as it is.
    const elsewhere = (await inA("/fetch", {
      url: `http://${d.ip}:8080/`,
      headers: { host: "server:8080" },
    })) as {
      status: number;
      body: string;
    };
    assert.equal(elsewhere.status, 200);
    assert.equal((JSON.parse(elsewhere.body) as { clientId: string | null }).clientId, null);
    assert.ok(
      metricValue(await metrics(inA), "request_total", {
        authority: "server:8080",
        route: "default",
        tls: "none",
      }) >= 1,
      "the request to an address outside the Service went there as it is, without its profile",
    );
  });

  it("forwards a destination the mesh does not know as it is, in plaintext, counted tls=none", async () => {
    const r = await fetchJson(inA, `http://${d.ip}:8080/`);
    assert.equal(r.status, 200);
    assert.equal(r.app.clientId, null);
    assert.equal(r.app.remote, a.ip);
    const none = metricValue(await metrics(inA), "request_total", { direction: "outbound", tls: "none" });
    assert.ok(none >= 1, `outbound requests counted tls="none": ${none}`);
  });

  it("admits an unmeshed client in plaintext to the port it dialled, counted as plaintext", async () => {
    const r = await fetchJson(inC, `http://${b.ip}:8080/`);
    assert.equal(r.status, 200);
    assert.equal(r.app.port, 8080);
    assert.equal(r.app.clientId, null);
    assert.ok(
      metricValue(await metrics(inB), "request_total", { direction: "inbound", tls: "plaintext" }) >= 1,
      'the inbound proxy counted the unmeshed client as tls="plaintext"',
    );
  });

  it("relays a server-first protocol on an opaque port at once, over mTLS", async () => {
    const r = await inA("/tcp", {
      host: redisIp,
      port: 6379,
      send: "ping\r\n",
      expect: "PING",
      timeoutMs: 10_000,
    });
    assert.equal(r.error, undefined, JSON.stringify(r));
    assert.match(String(r.received), /^\+HELLO 6379\r\nPING/);
    assert.ok(
      metricValue(await metrics(inA), "tcp_forward_total", { tls: "mtls", peer_identity: serverId }) >= 1,
      "the opaque connection was relayed over mTLS to the server",
    );
    assert.ok(
      metricValue(await metrics(inB), "tcp_forward_total", {
        direction: "inbound",
        tls: "mtls",
        peer_identity: clientId,
      }) >= 1,
      "and the server's proxy counted it, with the client's identity, as it relayed it to the application",
    );
  });

  it("never lets a transport header reach a loopback-only listener or a proxy port", async () => {
    // Through the client's proxy: the server's proxy dials b's own address, where 7070 is closed.
    const viaProxy = (await inA("/fetch", { url: `http://${b.ip}:7070/` })) as { status: number };
    assert.equal(viaProxy.status, 502);
    // A peer holding a valid mesh identity, speaking the header itself from another pod.
    const keys = generateKeyPair();
    const certFile = join(lab.dir, "peer.crt");
    const keyFile = join(lab.dir, "peer.key");
    const caFile = join(lab.dir, "ca.crt");
    writeFileSync(certFile, issueFor(mesh.ca, keys.publicKey, { spiffeId: clientId, lifetimeMs: 600_000 }));
    writeFileSync(keyFile, privateKeyToPem(keys.privateKey));
    writeFileSync(caFile, mesh.ca.anchor.pem);
    const attempt = (port: number) =>
      inC("/tcp", {
        host: b.ip,
        port: 4143,
        first: "client",
        send: "GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n",
        expect: "HTTP/1.1 ",
        timeoutMs: 10_000,
        tls: {
          certFile,
          keyFile,
          caFile,
          alpn: [transportAlpn],
          headerHex: encodeTransportHeader({ protocol: "http/1.1", targetPort: port }).toString("hex"),
        },
      });
    const allowed = await attempt(8080);
    assert.match(String(allowed.received), /^HTTP\/1\.1 200/);
    for (const port of [4191, 4140, 4143]) {
      const r = await attempt(port);
      assert.equal(r.received, "", `port ${port} answered: ${r.received}`);
    }
    const refused = metricValue(await metrics(inB), "tcp_rejected_total", { reason: "bad_target_port" });
    assert.ok(refused >= 3, `headers naming proxy ports refused: ${refused}`);
  });
});
