import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { test } from "node:test";
import { freePort } from "./free-port.ts";

test("freePort hands out distinct ports below the kernel's ephemeral range that a child can bind", async () => {
  const ephemeralLow = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0]);
  const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
  assert.equal(new Set(ports).size, ports.length, "no port handed out twice");
  for (const port of ports) assert.ok(port < ephemeralLow, `${port} is below ${ephemeralLow}`);
  for (const port of ports) {
    const server = createServer();
    await new Promise<void>((resolve, reject) =>
      server.once("error", reject).listen(port, "127.0.0.1", resolve),
    );
    await new Promise((resolve) => server.close(resolve));
  }
});
