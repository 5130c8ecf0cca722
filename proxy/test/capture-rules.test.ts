/**
 * Table tests of the pure parts of transparent capture: port sets, the transport header's
 * bytes, which application port an inbound connection may reach, when an outbound destination
 * is the proxy itself, and short Service names.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { describe, it } from "node:test";
import { defaultOpaquePorts, parseConfig, parsePortSet, portSetHas } from "../config.ts";
import { InboundTargets } from "../inbound-target.ts";
import { canonicalAuthority } from "../layers/discover.ts";
import { formatIpv6 } from "../original-destination.ts";
import { authorityOf, ProxyAddresses, unmapAddress } from "../outbound-destination.ts";
import { decodeTransportHeader, encodeTransportHeader } from "../transport-header.ts";

describe("opaque ports", () => {
  it("default to the opaque ports of mature meshes, both ways; none is none", () => {
    const parsed = parseConfig({
      outbound: { listen: "127.0.0.1:4140" },
      inbound: { listen: "0.0.0.0:4143", app: "127.0.0.1:80", allowPlaintext: true },
    });
    assert.ok(parsed.ok);
    for (const { from } of defaultOpaquePorts) {
      assert.ok(portSetHas(parsed.config.outbound!.opaquePorts, from), String(from));
      assert.ok(portSetHas(parsed.config.inbound!.opaquePorts, from), String(from));
    }
    assert.ok(!portSetHas(parsed.config.outbound!.opaquePorts, 8080));
    const none = parseConfig({ outbound: { listen: "127.0.0.1:4140", opaquePorts: "none" } });
    assert.ok(none.ok);
    assert.deepEqual(none.config.outbound?.opaquePorts, []);
    assert.deepEqual(parsePortSet("25,8000-8100"), [
      { from: 25, to: 25 },
      { from: 8000, to: 8100 },
    ]);
  });
});

describe("capture configuration", () => {
  it("needs no inbound.app with capture, and refuses a wildcard outbound listener", () => {
    const ok = parseConfig({ capture: true, inbound: { listen: "0.0.0.0:4143", allowPlaintext: true } });
    assert.ok(ok.ok, JSON.stringify(ok));
    assert.equal(ok.config.inbound?.app, undefined);
    const bad = parseConfig({ capture: "true", outbound: { listen: "0.0.0.0:4140", opaquePorts: "x" } });
    assert.ok(!bad.ok);
    assert.ok(bad.errors.some((e) => e.includes("loopback")));
    assert.ok(bad.errors.some((e) => e.startsWith("outbound.opaquePorts")));
    assert.ok(!parseConfig({ inbound: { listen: "0.0.0.0:4143", allowPlaintext: true } }).ok);
  });
});

describe("original destination", () => {
  it("writes IPv6 addresses as RFC 5952 does (WHATWG URL parsing is the reference)", () => {
    const samples = [
      "::1",
      "::",
      "fd00::7",
      "2001:db8:0:0:1:0:0:1",
      "2001:db8::1:0:0:0",
      "1:0:0:2:0:0:0:3",
      "fe80::1:2:3:4:5:6",
    ];
    for (const text of samples) {
      const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
      const bytes = Buffer.alloc(16);
      const parts = canonical.split("::");
      const head = parts[0] ? parts[0].split(":") : [];
      const tail = parts.length > 1 && parts[1] ? parts[1].split(":") : [];
      const groups = [...head, ...Array(8 - head.length - tail.length).fill("0"), ...tail];
      for (const [i, g] of groups.entries()) bytes.writeUInt16BE(Number.parseInt(g, 16), i * 2);
      assert.equal(formatIpv6(bytes), canonical, text);
    }
  });
});

describe("transport header", () => {
  it("round-trips and refuses what is not one", () => {
    const b = encodeTransportHeader({ protocol: "h2", targetPort: 8080 });
    assert.equal(b.toString("hex"), "5452545001021f90");
    assert.deepEqual(decodeTransportHeader(b), { protocol: "h2", targetPort: 8080 });
    assert.equal(decodeTransportHeader(Buffer.from("GET / HTTP/1.1")), "bad magic");
    assert.equal(decodeTransportHeader(Buffer.from("5452545002021f90", "hex")), "unknown version 2");
    assert.equal(decodeTransportHeader(Buffer.from("5452545001091f90", "hex")), "unknown protocol 9");
    assert.equal(decodeTransportHeader(Buffer.from("5452545001010000", "hex")), "target port 0");
    assert.throws(() => encodeTransportHeader({ protocol: "opaque", targetPort: 70000 }));
  });
});

describe("inbound targets", () => {
  const socket = (localAddress: string, localPort: number) => ({ localAddress, localPort }) as Socket;
  const proxyPorts = new Set([4143, 4140, 4191]);
  const targets = new InboundTargets({ proxyPorts, fallback: undefined });
  const withFallback = new InboundTargets({ proxyPorts, fallback: { host: "127.0.0.1", port: 8080 } });

  it("reach the named port on the address the connection arrived on, never loopback by choice", () => {
    assert.deepEqual(targets.resolve(socket("::ffff:10.1.0.7", 4143), 9090), {
      ok: true,
      target: { host: "10.1.0.7", port: 9090 },
    });
  });

  it("never reach a proxy port, port 0 or a port out of range", () => {
    for (const p of [4140, 4191, 4143, 0, 65536, 1.5]) {
      const r = targets.resolve(socket("10.1.0.7", 4143), p);
      assert.ok(!r.ok, String(p));
    }
  });

  it("send connections that name no port to the fallback, or refuse them", () => {
    assert.deepEqual(targets.resolve(socket("10.1.0.7", 4143), undefined), {
      ok: false,
      reason: "no_target_port",
    });
    const r = withFallback.resolve(socket("10.1.0.7", 4143), undefined);
    assert.deepEqual(r, { ok: true, target: { host: "127.0.0.1", port: 8080 } });
    assert.deepEqual(withFallback.resolve(socket("10.1.0.7", 4143), 4143), {
      ok: false,
      reason: "bad_target_port",
    });
  });
});

describe("outbound destinations", () => {
  const self = new ProxyAddresses(new Set([4140, 4143, 4191]), {
    eth0: [
      {
        address: "10.1.0.7",
        family: "IPv4",
        netmask: "255.255.255.0",
        mac: "",
        internal: false,
        cidr: null,
      },
    ],
  });
  it("know the proxy itself on every local address, and nothing else", () => {
    assert.ok(self.isSelf({ host: "127.0.0.1", port: 4140 }));
    assert.ok(self.isSelf({ host: "::ffff:10.1.0.7", port: 4143 }));
    assert.ok(self.isSelf({ host: "::1", port: 4191 }));
    assert.ok(!self.isSelf({ host: "10.1.0.8", port: 4143 }));
    assert.ok(!self.isSelf({ host: "10.1.0.7", port: 8080 }));
  });
  it("write addresses as authorities", () => {
    assert.equal(authorityOf({ host: "fd00::1", port: 80 }), "[fd00::1]:80");
    assert.equal(unmapAddress("::ffff:10.0.0.1"), "10.0.0.1");
    assert.equal(unmapAddress("::ffff"), "::ffff");
  });
  it("resolve short Service names in the pod's namespace", () => {
    const names = { podNamespace: "demo", clusterDomain: "cluster.local" };
    assert.equal(canonicalAuthority("server:8080", names), "server.demo.svc.cluster.local:8080");
    assert.equal(canonicalAuthority("Server", names), "server.demo.svc.cluster.local:80");
    assert.equal(canonicalAuthority("server.other:8080", names), "server.other:8080");
    assert.equal(canonicalAuthority("10.0.0.1:80", names), "10.0.0.1:80");
    assert.equal(canonicalAuthority("server:8080", { ...names, podNamespace: undefined }), "server:8080");
  });
});
