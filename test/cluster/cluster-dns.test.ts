// The real node's DNS answers, without a cluster: Service names map to the ready endpoints of
// their EndpointSlices, everything else is NXDOMAIN, and a known name has no AAAA records.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice } from "@kubernetes/client-node";
import { answer, parseQuery, ServiceEndpoints, serviceKeyOf } from "./cluster-dns.ts";

function query(name: string, type = 1, id = 0x1234): Buffer {
  const labels = name
    .split(".")
    .filter(Boolean)
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

function slice(name: string, service: string, endpoints: Array<[string, boolean]>): V1EndpointSlice {
  return {
    metadata: { name, namespace: "default", labels: { "kubernetes.io/service-name": service } },
    addressType: "IPv4",
    endpoints: endpoints.map(([address, ready]) => ({ addresses: [address], conditions: { ready } })),
  };
}

function decode(reply: Buffer): { id: number; rcode: number; addresses: string[] } {
  const count = reply.readUInt16BE(6);
  const question = parseQuery(reply);
  let offset = 12 + (question?.raw.length ?? 0);
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    addresses.push([...reply.subarray(offset + 12, offset + 16)].join("."));
    offset += 16;
  }
  return { id: reply.readUInt16BE(0), rcode: reply.readUInt16BE(2) & 0xf, addresses };
}

describe("cluster DNS answers", () => {
  const endpoints = new ServiceEndpoints();
  endpoints.upsert(
    slice("web-a", "web", [
      ["10.253.7.10", true],
      ["10.253.7.11", false],
    ]),
  );
  endpoints.upsert(slice("web-b", "web", [["10.253.7.12", true]]));
  endpoints.upsert(slice("idle-a", "idle", [["10.253.7.13", false]]));

  it("maps <service>.<namespace>.svc[.cluster.local] to a Service key, nothing else", () => {
    assert.equal(serviceKeyOf("web.default.svc.cluster.local", "cluster.local"), "default/web");
    assert.equal(serviceKeyOf("web.default.svc", "cluster.local"), "default/web");
    assert.equal(serviceKeyOf("web.default.svc.cluster.local.", "cluster.local"), "default/web");
    assert.equal(serviceKeyOf("web.default", "cluster.local"), undefined);
    assert.equal(serviceKeyOf("example.com", "cluster.local"), undefined);
    assert.equal(serviceKeyOf("a.web.default.svc.cluster.local", "cluster.local"), undefined);
  });

  it("answers A with the ready addresses of every slice of the Service", () => {
    const reply = decode(
      answer(query("Web.Default.svc.cluster.local"), endpoints, "cluster.local") as Buffer,
    );
    assert.deepEqual(reply, { id: 0x1234, rcode: 0, addresses: ["10.253.7.10", "10.253.7.12"] });
  });

  it("answers NXDOMAIN for unknown names, other namespaces and Services without ready endpoints", () => {
    for (const name of [
      "nope.default.svc.cluster.local",
      "web.other.svc.cluster.local",
      "idle.default.svc",
      "example.com",
    ]) {
      const reply = decode(answer(query(name), endpoints, "cluster.local") as Buffer);
      assert.deepEqual(reply.rcode, 3, name);
      assert.deepEqual(reply.addresses, [], name);
    }
  });

  it("answers AAAA for a known name with no records (NOERROR), so resolvers keep the A answer", () => {
    const reply = decode(
      answer(query("web.default.svc.cluster.local", 28), endpoints, "cluster.local") as Buffer,
    );
    assert.deepEqual(reply, { id: 0x1234, rcode: 0, addresses: [] });
  });

  it("forgets a deleted slice and ignores malformed queries", () => {
    const copy = new ServiceEndpoints();
    copy.upsert(slice("web-b", "web", [["10.253.7.12", true]]));
    copy.remove(slice("web-b", "web", []));
    assert.equal(decode(answer(query("web.default.svc"), copy, "cluster.local") as Buffer).rcode, 3);
    assert.equal(answer(Buffer.from([1, 2, 3]), copy, "cluster.local"), undefined);
  });
});
