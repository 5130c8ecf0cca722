// A port for a child process to listen on, picked so that nothing else on the machine takes it
// between our check and the child's bind.
//
// A port that the kernel hands out for listen(0) comes from the ephemeral range
// (net.ipv4.ip_local_port_range, 32768–60999 by default), the same range every outgoing
// connection's source port comes from. With a dozen test files opening connections at once, a
// port we checked and closed was, now and then, some client's source port a moment later, and the
// child (a kube-apiserver, once in CI) failed with "address already in use". So we pick below
// that range, where the kernel hands out nothing on its own, and below the cluster's NodePort
// range too; a port is checked with a bind and never handed out twice by one process.

import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const LOW = 15_000;
const HIGH = 29_999;
const handedOut = new Set<number>();

function ephemeralLow(): number {
  try {
    return Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export async function freePort(): Promise<number> {
  // On a machine whose ephemeral range reaches down into ours, our range buys nothing.
  if (ephemeralLow() <= HIGH) return kernelPort();
  for (let attempt = 0; attempt < 1000; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port)) continue;
    handedOut.add(port); // before the check, so that concurrent callers never pick it too
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${LOW}–${HIGH} after 1000 attempts`);
}
