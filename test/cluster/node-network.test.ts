// The real node's bridge keeps one MAC address whatever pods come and go (node-network.ts,
// bridgeMac): pods learn the gateway's MAC once and must never be left sending to a MAC that
// no longer reaches the node. Needs root (creates a bridge and a veth pair); takes a second.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createNodeNetwork, type NodeNetwork, removeNodeNetwork } from "./node-network.ts";

const SERVICE_CIDR = "10.0.0.0/24";
const ip = (...args: string[]) => execFileSync("ip", args, { stdio: "pipe" });
const macOf = (link: string) => readFileSync(`/sys/class/net/${link}/address`, "utf8").trim();

describe("the real node's bridge", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-bridge-"));
  let network: NodeNetwork | undefined;
  const veth = `trbr${process.pid % 100000}`;
  after(() => {
    try {
      ip("link", "del", veth);
    } catch {
      // never created, or gone with the bridge
    }
    if (network) removeNodeNetwork(network.bridge, SERVICE_CIDR);
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its own MAC address when a port with a lower one joins and leaves", () => {
    network = createNodeNetwork(dir, SERVICE_CIDR);
    const own = macOf(network.bridge);
    assert.equal(macOf(network.bridge), own, "the bridge's MAC is set at creation");
    // A pod's host-side veth with the lowest possible unicast MAC: a bridge whose MAC the kernel
    // chose would take it, and lose it again when the pod ends.
    ip("link", "add", veth, "address", "00:00:00:00:00:01", "type", "veth", "peer", "name", `${veth}p`);
    ip("link", "set", veth, "master", network.bridge);
    ip("link", "set", veth, "up");
    assert.equal(macOf(network.bridge), own, "a port with a lower MAC does not change the bridge's");
    ip("link", "del", veth);
    assert.equal(macOf(network.bridge), own, "nor does its leaving");
  });
});
