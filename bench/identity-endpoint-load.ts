// Part (b) of the identity benchmark: the identity program end to end. A local cluster (etcd +
// kube-apiserver) holds the issuer Secret and the ServiceAccounts; the real program
// (`controlplane/main.ts identity`) runs as its own process and authenticates real tokens with
// real TokenReviews, cached for their lifetime; this process is a closed-loop HTTP/2 + TLS client
// with several connections and concurrent streams, sending 300 distinct CSRs in rotation.
// Per-core throughput divides answered requests by the server process's CPU seconds (/proc).
// The transport-only peer (startTransportFloor) takes the same load for comparison.
import { writeFileSync } from "node:fs";
import type http2 from "node:http2";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { issuerFromSecret, servingCredentials, servingNames } from "../controlplane/identity/issuer.ts";
import {
  applyIssuerSecret,
  connect,
  type IdentityProcess,
  rawCall,
  startIdentityProcess,
  type TestIssuer,
  testAnchor,
  testIssuer,
} from "../controlplane/identity/testing/identity-fixture.ts";
import {
  createCsr,
  generateKeyPair,
  pemBlocks,
  privateKeyToPem,
  spiffeIdFor,
  verifyChain,
} from "../pki/index.ts";
import { LocalCluster } from "../test/cluster/local-cluster.ts";
import { ProcessGroup } from "../test/cluster/process-group.ts";
import { cpuSeconds, type Started, start, stop } from "./proxy-bench-processes.ts";

interface Job {
  token: string;
  csrPem: string;
}

/** Where the load goes: a server process (for its CPU time), the anchor it chains to, the requests. */
export interface LoadTarget {
  url: string;
  pid: number;
  anchorPem: string;
  jobs: Job[];
}

export interface EndpointRig extends LoadTarget {
  identity: IdentityProcess;
  issuer: TestIssuer;
  dir: string;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export interface LoadSample {
  requests: number;
  errors: number;
  wallSeconds: number;
  serverCpuSeconds: number;
  clientCpuSeconds: number;
  firstError: string | undefined;
}

/** Cluster, issuer Secret, `accounts` ServiceAccounts with a token each, the identity process. */
export async function startEndpointRig(
  accounts: number,
  csrsPerAccount: number,
  nodeArgs: string[] = [],
): Promise<EndpointRig> {
  const cluster = await LocalCluster.start({ nodes: 0 });
  const group = new ProcessGroup();
  try {
    cluster.kubectl(["create", "namespace", "trellis-system"]);
    cluster.kubectl(["create", "namespace", "bench"]);
    const anchor = testAnchor("Bench Root");
    const issuer = testIssuer(anchor, "Bench Issuer");
    applyIssuerSecret(cluster, issuer);
    const jobs: Job[] = [];
    for (let a = 0; a < accounts; a++) {
      const name = `workload-${a}`;
      cluster.kubectl(["create", "serviceaccount", name, "-n", "bench"]);
      const token = cluster
        .kubectl(["create", "token", name, "-n", "bench", "--audience", "identity.trellis.dev"])
        .trim();
      const spiffeId = spiffeIdFor("cluster.local", "bench", name);
      for (let c = 0; c < csrsPerAccount; c++) {
        jobs.push({ token, csrPem: createCsr({ keyPair: generateKeyPair(), spiffeId }).pem });
      }
    }
    const identity = await startIdentityProcess(cluster, group, [], nodeArgs);
    return {
      identity,
      issuer,
      dir: cluster.dir,
      url: identity.url,
      pid: identity.process.child.pid ?? 0,
      anchorPem: anchor.cert.pem,
      jobs,
      metrics: async () => (await fetch(`http://127.0.0.1:${identity.adminPort}/metrics`)).text(),
      stop: async () => {
        await group.stop();
        await cluster.stop();
      },
    };
  } catch (err) {
    await group.stop();
    await cluster.stop();
    throw err;
  }
}

/** One answer checked in full, returned for the transport floor to send back. */
export async function checkOneAnswer(rig: EndpointRig): Promise<string> {
  const session = connect(rig.url, rig.anchorPem);
  try {
    const job = rig.jobs[0]!;
    const res = await rawCall(session, { token: job.token, body: job.csrPem });
    if (res.status !== 200) throw new Error(`the identity service answered ${res.status}: ${res.text}`);
    const chain = pemBlocks(String(res.json.certificateChainPem), "CERTIFICATE");
    const verified = verifyChain(chain, pemBlocks(rig.anchorPem, "CERTIFICATE"));
    if (!verified.ok || verified.spiffeId !== "spiffe://cluster.local/ns/bench/sa/workload-0") {
      throw new Error(`the answer does not verify: ${JSON.stringify(verified)}`);
    }
    return res.text;
  } finally {
    session.close();
  }
}

function request(session: http2.ClientHttp2Session, job: Job): Promise<number> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": "/v1/certify",
      authorization: `Bearer ${job.token}`,
      "content-type": "application/pkcs10",
    });
    let status = 0;
    let bytes = 0;
    stream.on("response", (h) => {
      status = Number(h[":status"]);
    });
    stream.on("data", (c: Buffer) => {
      bytes += c.length;
    });
    stream.on("error", reject);
    stream.on("close", () => (status === 200 && bytes > 0 ? resolve(status) : resolve(status || -1)));
    stream.end(job.csrPem);
  });
}

/** `connections` × `streams` requests in flight for `seconds`; counts answers and refusals. */
export async function closedLoop(
  target: LoadTarget,
  o: { connections: number; streams: number; seconds: number },
): Promise<LoadSample> {
  const sessions = await Promise.all(
    Array.from(
      { length: o.connections },
      () =>
        new Promise<http2.ClientHttp2Session>((resolve, reject) => {
          const s = connect(target.url, target.anchorPem);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        }),
    ),
  );
  const pid = target.pid;
  let next = 0;
  let requests = 0;
  let errors = 0;
  let firstError: string | undefined;
  const serverCpu = cpuSeconds(pid);
  const clientCpu = process.cpuUsage();
  const start = performance.now();
  const end = start + o.seconds * 1000;
  const worker = async (session: http2.ClientHttp2Session) => {
    while (performance.now() < end) {
      const job = target.jobs[next++ % target.jobs.length]!;
      try {
        const status = await request(session, job);
        if (status === 200) requests++;
        else {
          errors++;
          firstError ??= `status ${status}`;
        }
      } catch (err) {
        errors++;
        firstError ??= String(err);
      }
    }
  };
  await Promise.all(sessions.flatMap((s) => Array.from({ length: o.streams }, () => worker(s))));
  const wallSeconds = (performance.now() - start) / 1000;
  const serverCpuSeconds = cpuSeconds(pid) - serverCpu;
  const used = process.cpuUsage(clientCpu);
  for (const s of sessions) s.close();
  return {
    requests,
    errors,
    wallSeconds,
    serverCpuSeconds,
    clientCpuSeconds: (used.user + used.system) / 1e6,
    firstError,
  };
}

/**
 * A peer server (bench/identity-transport-floor.ts) with a serving certificate from the rig's
 * issuer and the same names: "fixed" answers `answer` to every request, "sign" signs the CSR.
 */
export async function startTransportFloor(
  rig: EndpointRig,
  answer: string,
  mode: "fixed" | "sign",
): Promise<{ target: LoadTarget; stop(): Promise<void> }> {
  const issuer = issuerFromSecret({
    "tls.crt": rig.issuer.cert.pem,
    "tls.key": privateKeyToPem(rig.issuer.keys.privateKey),
    "ca.crt": rig.issuer.anchor.cert.pem,
  });
  const serving = servingCredentials(
    issuer,
    servingNames("cluster.local", "trellis-system", "trellis-identity"),
    86_400_000,
  );
  const files = {
    TRANSPORT_FLOOR_CERT: serving.cert,
    TRANSPORT_FLOOR_KEY: serving.key,
    TRANSPORT_FLOOR_BODY: answer,
    TRANSPORT_FLOOR_ISSUER_CERT: rig.issuer.cert.pem,
    TRANSPORT_FLOOR_ISSUER_KEY: privateKeyToPem(rig.issuer.keys.privateKey),
  };
  const env: NodeJS.ProcessEnv = { ...process.env, TRANSPORT_FLOOR_MODE: mode };
  for (const [name, content] of Object.entries(files)) {
    env[name] = join(rig.dir, name.toLowerCase());
    writeFileSync(env[name], content);
  }
  const script = fileURLToPath(new URL("./identity-transport-floor.ts", import.meta.url));
  const started: Started = await start(process.execPath, ["--import", "tsx", script], /^listening \d+/, env);
  const port = Number(started.line.split(" ")[1]);
  return {
    target: { url: `https://127.0.0.1:${port}`, pid: started.pid, anchorPem: rig.anchorPem, jobs: rig.jobs },
    stop: () => stop(started),
  };
}
