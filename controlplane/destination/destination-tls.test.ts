// The destination service's mutual TLS against a real cluster (API server, controller-manager,
// KWOK): only clients with a mesh identity of the trust domain, verified against the trust
// bundle, may watch; refusals are counted by reason; the serving certificate and the trust
// bundle are reloaded from their files while watch streams stay open and keep receiving.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { type KeyObject, X509Certificate } from "node:crypto";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { TLSSocket } from "node:tls";
import {
  createIssuer,
  createTrustAnchor,
  generateKeyPair,
  type IssuedCertificate,
  issueLeaf,
  privateKeyToPem,
  type Signer,
} from "../../pki/index.ts";
import { freePort, LocalCluster, waitFor } from "../../test/cluster/local-cluster.ts";

const repo = join(import.meta.dirname, "../..");
const day = 86_400_000;
const meshId = "spiffe://cluster.local/ns/shop/sa/web";

const manifests = `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec:
  selector: { app: web }
  ports: [{ name: http, port: 8080, targetPort: 80 }]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: shop }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web, trellis.dev/proxy-version: 1.0.0 } }
    spec:
      containers: [{ name: app, image: "localhost/web:1", ports: [{ containerPort: 80 }] }]
`;

interface Ca {
  anchor: IssuedCertificate;
  signer: Signer;
  issuerPem: string;
}

function createCa(name: string): Ca {
  const anchorKeys = generateKeyPair();
  const notAfter = new Date(Date.now() + 30 * day);
  const anchor = createTrustAnchor({ commonName: `${name} root`, keyPair: anchorKeys, notAfter });
  const issuerKeys = generateKeyPair();
  const issuer = createIssuer({
    commonName: `${name} issuer`,
    publicKey: issuerKeys.publicKey,
    signer: { certificateDer: anchor.der, privateKey: anchorKeys.privateKey },
    notAfter,
  });
  return {
    anchor,
    issuerPem: issuer.pem,
    signer: { certificateDer: issuer.der, privateKey: issuerKeys.privateKey },
  };
}

interface Credentials {
  cert: string;
  key: string;
}

function leaf(ca: Ca, o: { spiffeId?: string; dnsNames?: string[]; ipAddresses?: string[] }): Credentials {
  const keys = generateKeyPair();
  const issued = issueLeaf({
    publicKey: keys.publicKey as KeyObject,
    signer: ca.signer,
    ...o,
    notBefore: new Date(Date.now() - 2000),
    notAfter: new Date(Date.now() + day),
  });
  return { cert: issued.pem + ca.issuerPem, key: privateKeyToPem(keys.privateKey) };
}

/** Replaces a file in one step, as a Secret or ConfigMap volume update does. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.new`, text);
  renameSync(`${path}.new`, path);
}

/** A watch as a proxy opens it; `status` is 0 when the connection was refused. */
class Watch {
  status = 0;
  failed = false;
  ended = false;
  readonly lines: { endpoints: unknown[] }[] = [];
  readonly session: http2.ClientHttp2Session;

  constructor(port: number, ca: string, client: Credentials | undefined) {
    this.session = http2.connect(`https://127.0.0.1:${port}`, { ca, ...client });
    this.session.on("error", () => {
      this.failed = true;
    });
    this.session.on("close", () => {
      this.failed ||= this.status === 0;
    });
    const stream = this.session.request({ ":path": "/v1/watch?authority=web.shop:8080" });
    stream.setEncoding("utf8");
    let pending = "";
    stream.on("response", (h) => {
      this.status = Number(h[":status"]);
    });
    stream.on("data", (chunk: string) => {
      const parts = (pending + chunk).split("\n");
      pending = parts.pop() ?? "";
      for (const l of parts) if (l.trim()) this.lines.push(JSON.parse(l) as { endpoints: unknown[] });
    });
    stream.on("end", () => {
      this.ended = true;
    });
    stream.on("error", () => {
      this.failed = true;
    });
  }

  /** SHA-256 fingerprint of the serving certificate this connection got. */
  get serverFingerprint(): string | undefined {
    return (this.session.socket as TLSSocket | undefined)?.getPeerCertificate()?.fingerprint256;
  }

  close(): void {
    this.session.destroy();
  }
}

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/metrics" }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

function counter(text: string, name: string, result: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`result="${result}"`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("destination service: mutual TLS", { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-destination-tls-"));
  const files = { cert: join(dir, "tls.crt"), key: join(dir, "tls.key"), bundle: join(dir, "ca-bundle.crt") };
  const mesh = createCa("mesh");
  const serverNames = { dnsNames: ["trellis-destination.trellis-system.svc"], ipAddresses: ["127.0.0.1"] };
  let cluster: LocalCluster;
  let child: ChildProcess;
  let port: number;
  let adminPort: number;
  const opened: Watch[] = [];
  const watch = (client: Credentials | undefined, ca = mesh.anchor.pem) => {
    const w = new Watch(port, ca, client);
    opened.push(w);
    return w;
  };

  before(async () => {
    const serving = leaf(mesh, serverNames);
    writeFileSync(files.cert, serving.cert);
    writeFileSync(files.key, serving.key);
    writeFileSync(files.bundle, mesh.anchor.pem);
    cluster = await LocalCluster.start({ nodes: 1 });
    cluster.kubectl(["apply", "--server-side", "-f", join(repo, "crds")]);
    cluster.kubectl(["apply", "-f", "-"], manifests);
    [port, adminPort] = [await freePort(), await freePort()];
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(repo, "controlplane/main.ts"),
        "destination",
        `--kubeconfig=${cluster.kubeconfigPath}`,
        `--port=${port}`,
        "--host=127.0.0.1",
        `--tls-cert-file=${files.cert}`,
        `--tls-key-file=${files.key}`,
        `--trust-bundle-file=${files.bundle}`,
        "--tls-reload-ms=200",
        `--admin-port=${adminPort}`,
        "--log-level=warn",
      ],
      { cwd: repo, stdio: ["ignore", "inherit", "inherit"] },
    );
    const client = leaf(mesh, { spiffeId: meshId });
    await waitFor(
      async () => {
        const w = new Watch(port, mesh.anchor.pem, client);
        await waitFor(async () => w.status !== 0 || w.failed, 5_000, "probe");
        w.close();
        return w.status === 200;
      },
      60_000,
      "destination serving mutual TLS",
    );
  });

  after(async () => {
    for (const w of opened) w.close();
    child?.kill("SIGTERM");
    await cluster?.stop();
  });

  it("lets a mesh identity watch and refuses, and counts, every other client", async () => {
    const ok = watch(leaf(mesh, { spiffeId: meshId }));
    await waitFor(async () => ok.lines.length > 0, 30_000, "first update");
    assert.equal(ok.status, 200);

    const refused = {
      NoClientCertificate: watch(undefined),
      UntrustedClientCertificate: watch(leaf(createCa("foreign"), { spiffeId: meshId })),
      NotMeshIdentity: watch(leaf(mesh, { spiffeId: "spiffe://other.domain/ns/shop/sa/web" })),
    };
    const dnsOnly = watch(leaf(mesh, { dnsNames: ["web.shop.svc"] }));
    for (const [reason, w] of [
      ...Object.entries(refused),
      ["NotMeshIdentity (no SPIFFE ID)", dnsOnly] as const,
    ]) {
      await waitFor(async () => w.failed || w.status !== 0, 10_000, `outcome for ${reason}`);
      assert.equal(w.status, 0, `${reason} must not get an answer`);
    }
    const metrics = await scrape(adminPort);
    const name = "trellis_destination_client_connections_total";
    assert.ok(counter(metrics, name, "Accepted") >= 1, metrics);
    assert.ok(counter(metrics, name, "NoClientCertificate") >= 1, metrics);
    assert.ok(counter(metrics, name, "UntrustedClientCertificate") >= 1, metrics);
    assert.ok(counter(metrics, name, "NotMeshIdentity") >= 2, metrics);
  });

  it("reloads its serving certificate without dropping an open stream", async () => {
    const client = leaf(mesh, { spiffeId: meshId });
    const open = watch(client);
    await waitFor(async () => open.lines.length > 0, 30_000, "first update");
    const before = open.serverFingerprint;
    const renewed = leaf(mesh, serverNames);
    replaceFile(files.key, renewed.key);
    replaceFile(files.cert, renewed.cert);
    let fresh: Watch | undefined;
    await waitFor(
      async () => {
        fresh?.close();
        fresh = watch(client);
        await waitFor(async () => fresh!.status !== 0 || fresh!.failed, 5_000, "fresh watch");
        return fresh.status === 200 && fresh.serverFingerprint !== before;
      },
      20_000,
      "new connections get the renewed certificate",
    );
    assert.equal(open.serverFingerprint, before);
    cluster.kubectl(["scale", "deployment/web", "-n", "shop", "--replicas=2"]);
    await waitFor(async () => open.lines.at(-1)?.endpoints.length === 2, 60_000, "update on the old stream");
    assert.equal(open.ended, false);
    assert.equal(open.failed, false);
    const metrics = await scrape(adminPort);
    assert.ok(counter(metrics, "trellis_destination_tls_reloads_total", "ok") >= 1, metrics);
  });

  it("keeps serving when a half-rotated key does not match, and recovers", async () => {
    const client = leaf(mesh, { spiffeId: meshId });
    const next = leaf(mesh, serverNames);
    replaceFile(files.key, next.key);
    await waitFor(
      async () => counter(await scrape(adminPort), "trellis_destination_tls_reloads_total", "invalid") >= 1,
      10_000,
      "mismatched pair refused",
    );
    const during = watch(client);
    await waitFor(async () => during.status !== 0 || during.failed, 10_000, "watch during rotation");
    assert.equal(during.status, 200);
    replaceFile(files.cert, next.cert);
    const expected = new X509Certificate(next.cert).fingerprint256;
    await waitFor(
      async () => {
        const w = watch(client);
        await waitFor(async () => w.status !== 0 || w.failed, 5_000, "watch after rotation");
        w.close();
        return w.serverFingerprint === expected;
      },
      20_000,
      "completed pair installed",
    );
  });

  it("follows the trust bundle: a new anchor's proxies are accepted once the bundle lists it", async () => {
    const next = createCa("next");
    const client = leaf(next, { spiffeId: meshId });
    const early = watch(client);
    await waitFor(async () => early.failed || early.status !== 0, 10_000, "before the bundle update");
    assert.equal(early.status, 0);
    replaceFile(files.bundle, mesh.anchor.pem + next.anchor.pem);
    await waitFor(
      async () => {
        const w = watch(client);
        await waitFor(async () => w.status !== 0 || w.failed, 5_000, "after the bundle update");
        w.close();
        return w.status === 200;
      },
      20_000,
      "accepted after the bundle lists the new anchor",
    );
  });
});
