// Data-plane revisions: a proxy version and a capture mode, one string for the rollout.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  dataPlaneRevision,
  fleetCaptureMode,
  fleetProxyVersion,
  parseRevision,
  podRevision,
  revisionAnnotations,
  targetRevision,
  templateRevision,
} from "./index.ts";

test("InitContainer revisions are the bare version; CNI ones carry /cni; both parse back", () => {
  assert.equal(dataPlaneRevision("0.1.0"), "0.1.0");
  assert.equal(dataPlaneRevision("0.1.0+build.5", "CNI"), "0.1.0+build.5/cni");
  assert.deepEqual(parseRevision("0.1.0+build.5/cni"), { version: "0.1.0+build.5", mode: "CNI" });
  assert.deepEqual(parseRevision("1.2.0"), { version: "1.2.0", mode: "InitContainer" });
  assert.deepEqual(revisionAnnotations("1.2.0/cni"), {
    "trellis.dev/proxy-version": "1.2.0",
    "trellis.dev/capture-mode": "CNI",
  });
});

test("pods and templates: their two halves, InitContainer when no mode is named", () => {
  assert.equal(podRevision({ "trellis.dev/proxy-version": "0.1.0" }), "0.1.0");
  assert.equal(
    podRevision({ "trellis.dev/proxy-version": "0.1.0", "trellis.dev/capture-mode": "CNI" }),
    "0.1.0/cni",
  );
  assert.equal(podRevision({ app: "web" }), undefined);
  assert.equal(templateRevision(revisionAnnotations("0.2.0/cni")), "0.2.0/cni");
  assert.equal(templateRevision({ "trellis.dev/capture-mode": "CNI" }), undefined);
});

test("the target takes CNI only once the operator says the plugin is ready; the fleet parses back", () => {
  const spec = { version: "0.1.0", proxy: {} } as never;
  assert.equal(targetRevision(spec, undefined), "0.1.0");
  assert.equal(targetRevision(spec, { capture: { mode: "CNI" } }), "0.1.0/cni");
  const rolling = {
    spec,
    status: {
      rollout: { fromVersion: "0.1.0/cni", toVersion: "0.1.0", step: 0, steps: 2, state: "Restarting" },
    },
  };
  assert.equal(fleetProxyVersion(rolling), "0.1.0");
  assert.equal(fleetCaptureMode(rolling), "CNI", "during a rollout, new pods keep the mode it moves from");
  assert.equal(
    fleetCaptureMode({
      spec,
      status: { proxies: { total: 0, updated: 0, summary: "", version: "0.1.0/cni" } },
    }),
    "CNI",
  );
});
