// Test and benchmark support for the identity service: a mesh CA (trust anchor + issuer) made with
// pki/ and written as the issuer Secret, the identity program started as a real process against a
// local cluster, and a raw HTTP/2 client that can send anything (good and bad requests alike).
// Not imported by the service itself.
import http2 from "node:http2";
import { join } from "node:path";
import {
  createIssuer,
  createTrustAnchor,
  generateKeyPair,
  type IssuedCertificate,
  type KeyPair,
  privateKeyToPem,
} from "../../../pki/index.ts";
import { repoRoot } from "../../../test/cluster/binaries.ts";
import { freePort, type LocalCluster, waitFor } from "../../../test/cluster/local-cluster.ts";
import type { ManagedProcess, ProcessGroup } from "../../../test/cluster/process-group.ts";

export const DAY_MS = 86_400_000;
export const TRUST_DOMAIN = "cluster.local";
export const SERVER_SPIFFE_ID = `spiffe://${TRUST_DOMAIN}/ns/trellis-system/sa/trellis-identity`;

export interface TestAnchor {
  keys: KeyPair;
  cert: IssuedCertificate;
}

export interface TestIssuer {
  keys: KeyPair;
  cert: IssuedCertificate;
  anchor: TestAnchor;
}

export function testAnchor(name: string): TestAnchor {
  const keys = generateKeyPair();
  const cert = createTrustAnchor({
    commonName: name,
    keyPair: keys,
    notAfter: new Date(Date.now() + 30 * DAY_MS),
  });
  return { keys, cert };
}

export function testIssuer(anchor: TestAnchor, name: string): TestIssuer {
  const keys = generateKeyPair();
  const cert = createIssuer({
    commonName: name,
    publicKey: keys.publicKey,
    signer: { certificateDer: anchor.cert.der, privateKey: anchor.keys.privateKey },
    notAfter: new Date(Date.now() + 7 * DAY_MS),
  });
  return { keys, cert, anchor };
}

/** The kubernetes.io/tls Secret as the operator's Certificate controller writes it. */
export function issuerSecretManifest(
  issuer: TestIssuer,
  anchorsPem: string = issuer.anchor.cert.pem,
): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    metadata: { name: "trellis-identity-issuer", namespace: "trellis-system" },
    data: {
      "tls.crt": b64(issuer.cert.pem),
      "tls.key": b64(privateKeyToPem(issuer.keys.privateKey)),
      "ca.crt": b64(anchorsPem),
    },
  });
}

export function applyIssuerSecret(cluster: LocalCluster, issuer: TestIssuer, anchorsPem?: string): void {
  cluster.kubectl(["apply", "-f", "-"], issuerSecretManifest(issuer, anchorsPem));
}

export interface IdentityProcess {
  process: ManagedProcess;
  port: number;
  adminPort: number;
  url: string;
}

/** Starts `controlplane/main.ts identity` on loopback and waits until it serves. */
export async function startIdentityProcess(
  cluster: LocalCluster,
  group: ProcessGroup,
  extraArgs: string[] = [],
  nodeArgs: string[] = [],
  /** Whose credentials it runs with: the cluster admin by default, or e.g. its own ServiceAccount's. */
  kubeconfigPath: string = cluster.kubeconfigPath,
): Promise<IdentityProcess> {
  const [port, adminPort] = [await freePort(), await freePort()];
  const process_ = group.start({
    name: "identity",
    command: process.execPath,
    args: [
      ...nodeArgs,
      "--import",
      "tsx",
      "controlplane/main.ts",
      "identity",
      `--kubeconfig=${kubeconfigPath}`,
      `--port=${port}`,
      "--host=127.0.0.1",
      `--admin-port=${adminPort}`,
      "--admin-host=127.0.0.1",
      `--trust-domain=${TRUST_DOMAIN}`,
      ...extraArgs,
    ],
    env: { ...process.env, TRELLIS_NAMESPACE: "trellis-system" },
    logFile: join(cluster.dir, "identity.log"),
    cwd: repoRoot,
  });
  await waitFor(
    async () => {
      if (process_.exitCode() !== undefined)
        throw new Error(`identity exited: ${cluster.logTail("identity")}`);
      return cluster.logTail("identity", 200).includes("identity serving");
    },
    30_000,
    "the identity service to serve",
  );
  return { process: process_, port, adminPort, url: `https://127.0.0.1:${port}` };
}

/** An HTTP/2 session that trusts `caPem` and checks the server's SPIFFE ID (or skips checks). */
export function connect(url: string, caPem: string, expectedSpiffeId = SERVER_SPIFFE_ID) {
  const session = http2.connect(url, {
    ca: caPem,
    ALPNProtocols: ["h2"],
    checkServerIdentity: (_host, cert) => {
      const ids = (cert.subjectaltname ?? "").split(", ").filter((s) => s.startsWith("URI:"));
      return ids.includes(`URI:${expectedSpiffeId}`)
        ? undefined
        : new Error(`server identity ${ids.join(",")} is not ${expectedSpiffeId}`);
    },
  });
  session.on("error", () => {});
  return session;
}

export interface RawAnswer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  text: string;
  json: Record<string, unknown>;
}

/** One request on `session`; the body may be sent in pieces (no content-length then). */
export function rawCall(
  session: http2.ClientHttp2Session,
  o: {
    token?: string;
    body: string | Buffer;
    contentType?: string;
    path?: string;
    method?: string;
    chunked?: boolean;
  },
): Promise<RawAnswer> {
  const headers: http2.OutgoingHttpHeaders = {
    ":method": o.method ?? "POST",
    ":path": o.path ?? "/v1/certify",
    "content-type": o.contentType ?? "application/pkcs10",
  };
  if (o.token !== undefined) headers.authorization = `Bearer ${o.token}`;
  const body = Buffer.from(o.body);
  if (!o.chunked) headers["content-length"] = body.length;
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      responseHeaders = h;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", (err) => (status === 0 ? reject(err) : undefined));
    stream.on("close", () => {
      if (status === 0) return reject(new Error(`stream closed without a response (code ${stream.rstCode})`));
      const text = Buffer.concat(chunks).toString("utf8");
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not JSON; the test looks at `text`
      }
      resolve({ status, headers: responseHeaders, text, json });
    });
    if (o.chunked) {
      for (let i = 0; i < body.length; i += 4096) stream.write(body.subarray(i, i + 4096));
      stream.end();
    } else {
      stream.end(body);
    }
  });
}

/** The value of one series from a Prometheus text exposition, 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== "{" && rest[0] !== " ") continue;
    if (wanted.every((w) => rest.includes(w))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

/** A JWT-shaped token with the given claims and a signature nobody made. */
export function madeUpJwt(claims: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "RS256", kid: "made-up" })}.${part(claims)}.${Buffer.from("not a signature").toString("base64url")}`;
}
