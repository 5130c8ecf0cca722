// TEST IMAGE ONLY: a proxy that never becomes ready. Its admin port answers /live with 200 and
// /ready with 503 forever, so a canary rollout to its version must fail and roll back. Built by
// `npm run images -- --broken-proxy <version>` and labelled dev.trellis.test-image.
import { createServer } from "node:http";

const listen = process.env.TRELLIS_PROXY_ADMIN_LISTEN ?? "127.0.0.1:4191";
const at = listen.lastIndexOf(":");
const server = createServer((req, res) => {
  const status = req.url === "/live" ? 200 : req.url === "/ready" ? 503 : 404;
  res.writeHead(status, { "content-type": "text/plain" }).end(status === 503 ? "never ready\n" : "\n");
});
server.listen(Number(listen.slice(at + 1)), listen.slice(0, at), () => {
  process.stderr.write(`never-ready test proxy: admin on ${listen}, /ready answers 503\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
