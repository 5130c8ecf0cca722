/**
 * The benchmark's upstream: a plain node:http keep-alive server answering a fixed body, the
 * same as in shared/TARGETS.md. Prints its port on stdout. Run by proxy-hop.bench.ts.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

const body = Buffer.from("hello from upstream\n");
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
