// The trellis-cni DaemonSet as rendered for each phase (golden files; UPDATE_GOLDEN=1), and the
// security properties docs/cni.md promises, asserted so that a change to them is seen.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { V1DaemonSet } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { validateMeshSpec } from "../../api/index.ts";
import { assertGolden } from "../../test/golden.ts";
import { renderCni } from "./cni-objects.ts";

const testdata = fileURLToPath(new URL("./testdata", import.meta.url));

function render(phase: "Install" | "Uninstall" | "Absent") {
  const checked = validateMeshSpec({
    version: "0.2.0",
    controlPlane: { imageRegistry: "registry.example/trellis" },
    proxy: { capture: { mode: "CNI", cni: { binDir: "/var/lib/cni/bin", confDir: "/etc/cni/net.d" } } },
  });
  assert.ok(checked.ok, checked.ok ? "" : checked.errors.join("; "));
  return renderCni({ mesh: { name: "default", uid: "u-1", spec: checked.value }, version: "0.2.0", phase });
}

describe("the trellis-cni DaemonSet", () => {
  for (const phase of ["Install", "Uninstall"] as const) {
    it(`renders the ${phase} phase`, () => {
      const docs = render(phase).map((o) => stringify(o, { lineWidth: 0 }));
      assertGolden(join(testdata, `cni-${phase.toLowerCase()}.golden.yaml`), docs.join("---\n"));
    });
  }

  it("renders nothing when absent", () => assert.deepEqual(render("Absent"), []));

  it("holds no capability, no token, no host namespace but the network, and only the two CNI folders", () => {
    const ds = render("Install").find((o) => o.kind === "DaemonSet") as unknown as V1DaemonSet;
    const pod = ds.spec?.template.spec;
    assert.ok(pod);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.hostPID, undefined);
    assert.equal(pod.hostIPC, undefined);
    assert.equal(pod.hostNetwork, true);
    const c = pod.containers[0];
    assert.deepEqual(c?.securityContext?.capabilities, { drop: ["ALL"] });
    assert.equal(c?.securityContext?.privileged, false);
    assert.equal(c?.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(c?.securityContext?.readOnlyRootFilesystem, true);
    assert.deepEqual(
      pod.volumes?.filter((v) => v.hostPath).map((v) => v.hostPath?.path),
      ["/var/lib/cni/bin", "/etc/cni/net.d"],
    );
  });
});
