// Peers for part (b) of the identity benchmark: the same HTTP/2 + TLS server settings as the
// identity endpoint, without authentication or the service around it. Mode "fixed" reads each
// body and answers a fixed body of a real answer's size (the transport alone); mode "sign" also
// runs pki's fast path on the CSR (parseCsr + issueLeaf) and answers the leaf. Together they show
// what the transport costs, what signing costs inside a server, and what the service adds.
// Run by bench/identity-endpoint-load.ts with TRANSPORT_FLOOR_* naming files (PEM, JSON).
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { issueLeaf, parseCsr, pemBlocks, privateKeyFromPem, type Signer } from "../pki/index.ts";

const file = (name: string) => readFileSync(process.env[name] ?? "", "utf8");
const answer = file("TRANSPORT_FLOOR_BODY");
const signer: Signer | undefined =
  process.env.TRANSPORT_FLOOR_MODE === "sign"
    ? {
        certificateDer: pemBlocks(file("TRANSPORT_FLOOR_ISSUER_CERT"), "CERTIFICATE")[0] ?? Buffer.alloc(0),
        privateKey: privateKeyFromPem(file("TRANSPORT_FLOOR_ISSUER_KEY")),
      }
    : undefined;

function sign(body: Buffer, issuer: Signer): string {
  const request = parseCsr(body);
  const leaf = issueLeaf({
    publicKey: request,
    signer: issuer,
    spiffeId: request.spiffeId,
    notAfter: new Date(Date.now() + 86_400_000),
  });
  return JSON.stringify({ certificateChainPem: leaf.pem, notAfter: leaf.notAfter.toISOString() });
}

const server = http2.createSecureServer({
  cert: file("TRANSPORT_FLOOR_CERT"),
  key: file("TRANSPORT_FLOOR_KEY"),
  allowHTTP1: false,
  minVersion: "TLSv1.2",
  maxSessionMemory: 16,
  settings: { maxConcurrentStreams: 256, maxHeaderListSize: 32 * 1024 },
});
server.on("stream", (stream) => {
  stream.on("error", () => {});
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  stream.once("end", () => {
    const body = signer ? sign(Buffer.concat(chunks), signer) : answer;
    stream.respond({ ":status": 200, "content-type": "application/json" });
    stream.end(body);
  });
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
