/**
 * The benchmark's floor for a Node proxy: a byte relay over node:net that does no HTTP at all
 * (no parsing, routing, metrics or pooling; one upstream connection per client connection).
 * Whatever one Node process spends here per request — reads, writes, the stream machinery,
 * the event loop — every proxy written for Node spends too, so it bounds what the Trellis
 * proxy can reach against HAProxy on the same hop. Plain JavaScript, run with the proxy's
 * runtime flags and without tsx, like the bundled proxy.
 *
 * Usage: node proxy-node-relay.mjs <upstream port>; prints {"port":N} when listening.
 */
import net from "node:net";

const upstream = Number(process.argv[2]);
const server = net.createServer({ noDelay: true }, (client) => {
  const up = net.connect({ host: "127.0.0.1", port: upstream, noDelay: true });
  client.on("data", (d) => up.write(d));
  up.on("data", (d) => client.write(d));
  client.on("close", () => up.destroy());
  up.on("close", () => client.destroy());
  client.on("error", () => {});
  up.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
