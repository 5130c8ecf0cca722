// Capture annotations → settings: what parses, what is refused (and then: all defaults, never
// half-configured), and the pod winning over its namespace key by key.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CAPTURE_ANNOTATIONS, DEFAULT_OPAQUE_PORTS, podCaptureOf } from "./annotations.ts";
import {
  defaultCaptureSettings,
  formatPortList,
  parseCidr,
  parseCidrList,
  parsePortList,
} from "./capture-settings.ts";

describe("capture annotations", () => {
  it("parses port lists and ranges, merged and sorted", () => {
    const parsed = parsePortList(" 8080, 25,8000-8010 ,8011, 80-80 ");
    assert.ok(parsed.ok);
    assert.equal(formatPortList(parsed.value), "25,80,8000-8011,8080");
    assert.deepEqual(parsePortList(""), { ok: true, value: [] });
  });

  for (const bad of ["0", "65536", "80-70", "http", "1-2-3", "-5", "8080/tcp", "1e3", "99999999"]) {
    it(`refuses the port list "${bad}"`, () => {
      const parsed = parsePortList(`80,${bad}`);
      assert.equal(parsed.ok, false);
      assert.match(parsed.ok ? "" : parsed.error, /is not a port/);
    });
  }

  it("parses CIDRs of both families and refuses the rest", () => {
    assert.deepEqual(parseCidrList("10.0.0.0/8, FD00::/8,10.0.0.0/8"), {
      ok: true,
      value: ["10.0.0.0/8", "fd00::/8"],
    });
    for (const bad of [
      "10.0.0.0",
      "10.0.0.0/33",
      "10.0.0/8",
      "fd00::/129",
      "example.com/8",
      "10.0.0.0/x",
      "/8",
    ]) {
      assert.equal(parseCidr(bad).ok, false, bad);
    }
  });

  it("applies the pod's annotation over the namespace's, key by key", () => {
    const capture = podCaptureOf(
      { [CAPTURE_ANNOTATIONS.skipOutboundPorts]: "5432" },
      {
        [CAPTURE_ANNOTATIONS.skipOutboundPorts]: "6379",
        [CAPTURE_ANNOTATIONS.skipSubnets]: "169.254.169.254/32",
        [CAPTURE_ANNOTATIONS.opaquePorts]: "9000-9001",
      },
    );
    assert.deepEqual(capture.problems, []);
    assert.equal(formatPortList(capture.settings.skipOutboundPorts), "5432");
    assert.deepEqual(capture.settings.skipSubnets, ["169.254.169.254/32"]);
    assert.equal(formatPortList(capture.opaquePorts), "9000-9001");
    assert.deepEqual(capture.applied, {
      skipOutboundPorts: "pod",
      skipSubnets: "namespace",
      opaquePorts: "namespace",
    });
  });

  it("keeps the proxy's own ports in the inbound skips whatever the annotation says", () => {
    const capture = podCaptureOf({ [CAPTURE_ANNOTATIONS.skipInboundPorts]: "9090" }, {});
    assert.equal(formatPortList(capture.settings.skipInboundPorts), "4140,4143,4191,9090");
  });

  it("falls back to the defaults for every setting when any annotation is bad, and says why", () => {
    const capture = podCaptureOf(
      {
        [CAPTURE_ANNOTATIONS.skipOutboundPorts]: "5432",
        [CAPTURE_ANNOTATIONS.opaquePorts]: "3306",
      },
      { [CAPTURE_ANNOTATIONS.skipSubnets]: "10.0.0.0/8,10.300.0.0/16" },
    );
    assert.deepEqual(capture.settings, defaultCaptureSettings());
    assert.deepEqual(capture.opaquePorts, DEFAULT_OPAQUE_PORTS);
    assert.deepEqual(capture.applied, {});
    assert.deepEqual(capture.problems, [
      'config.trellis.dev/skip-subnets on the namespace: "10.300.0.0/16" is not a CIDR (an IPv4 or IPv6 address, "/" and a prefix length)',
    ]);
  });

  it("gives a pod without annotations the defaults", () => {
    const capture = podCaptureOf(undefined, undefined);
    assert.deepEqual(capture.settings, defaultCaptureSettings());
    assert.equal(formatPortList(capture.opaquePorts), "25,587,3306,4444,5432,6379,9300,11211");
    assert.deepEqual(capture.problems, []);
  });
});
