// The one mapping from a registry and versions to image references.
import assert from "node:assert/strict";
import { test } from "node:test";
import { meshImages, proxyRepository, releaseImageReferences } from "./image-references.ts";

test("a release names the operator and control plane at its version, the proxy at the proxy's", () => {
  assert.deepEqual(releaseImageReferences("localhost/trellis/", "0.1.0", "0.1.1"), {
    operator: "localhost/trellis/operator:0.1.0",
    controlPlane: "localhost/trellis/controlplane:0.1.0",
    init: "localhost/trellis/init:0.1.0",
    cni: "localhost/trellis/cni:0.1.0",
    proxy: "localhost/trellis/proxy:0.1.1",
  });
});

test("a Mesh's own proxy repository wins, and build metadata becomes a valid tag", () => {
  assert.deepEqual(meshImages("quay.io/acme", "1.2.0+build.5", { image: "quay.io/acme/edge-proxy" }), {
    controlPlane: "quay.io/acme/controlplane:1.2.0_build.5",
    init: "quay.io/acme/init:1.2.0_build.5",
    cni: "quay.io/acme/cni:1.2.0_build.5",
    proxy: "quay.io/acme/edge-proxy:1.2.0_build.5",
  });
  assert.equal(proxyRepository("localhost/trellis"), "localhost/trellis/proxy");
});
