/**
 * Load for the capture benchmark, run inside a pod namespace of it (`ip netns exec`):
 *
 *   requests <count> <new|keep> <url> <host|-> [<url> <host|-> …]
 *                                              sequential HTTP/1.1 GETs, a new connection each
 *                                              (`new`) or one kept-alive connection per target
 *                                              (`keep`); with several targets, request i goes to
 *                                              each in turn (the order alternating), so a stall
 *                                              of the machine hits them alike; prints
 *                                              {latenciesUs: number[][]} as JSON
 *   orig-dst <ip> <port> <calls>                dials <ip>:<port>, which the nat rules redirect to a
 *                                              listener of its own on 4140 (no proxy running), and
 *                                              times `calls` SO_ORIGINAL_DST reads on the accepted
 *                                              socket through the proxy's addon; prints {nsPerRead}
 */
import http from "node:http";
import net from "node:net";
import { loadOriginalDestinationAddon, originalDestination } from "../proxy/original-destination.ts";

const [mode, ...args] = process.argv.slice(2);

function once(agent: http.Agent | false, url: string, host: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.get(url, { agent, headers: host ? { host } : {} }, (res) => {
      res.resume();
      res.on("end", () => resolve(Number(process.hrtime.bigint() - started) / 1000));
    });
    req.on("error", reject);
  });
}

if (mode === "requests") {
  const [countText = "1000", kind = "new", ...rest] = args;
  const targets: { url: string; host: string | undefined; agent: http.Agent | false }[] = [];
  for (let i = 0; i + 1 < rest.length; i += 2) {
    const agent = kind === "keep" ? new http.Agent({ keepAlive: true, maxSockets: 1 }) : false;
    targets.push({ url: rest[i]!, host: rest[i + 1] === "-" ? undefined : rest[i + 1], agent });
  }
  const latenciesUs: number[][] = targets.map(() => []);
  for (let i = 0; i < Number(countText); i++) {
    for (let k = 0; k < targets.length; k++) {
      const j = i % 2 === 0 ? k : targets.length - 1 - k;
      const t = targets[j]!;
      latenciesUs[j]!.push(await once(t.agent, t.url, t.host));
    }
  }
  for (const t of targets) if (t.agent) t.agent.destroy();
  process.stdout.write(`${JSON.stringify({ latenciesUs })}\n`);
} else if (mode === "orig-dst") {
  const [ip = "", portText = "0", callsText = "100000"] = args;
  const addon = loadOriginalDestinationAddon();
  const server = net.createServer((socket) => {
    const calls = Number(callsText);
    for (let i = 0; i < 1000; i++) originalDestination(addon, socket); // warm-up
    const started = process.hrtime.bigint();
    let found = 0;
    for (let i = 0; i < calls; i++) if (originalDestination(addon, socket)) found++;
    const ns = Number(process.hrtime.bigint() - started) / calls;
    process.stdout.write(`${JSON.stringify({ nsPerRead: ns, found: found === calls })}\n`);
    socket.destroy();
    server.close();
  });
  // The nat rules send every non-loopback TCP connection to 4140: listen there, dial elsewhere.
  server.listen(4140, "127.0.0.1", () => {
    net.connect(Number(portText), ip).on("error", () => {});
  });
} else {
  throw new Error("usage: capture-load.ts requests|orig-dst …");
}
