/**
 * Test fixture: the control plane a pair of real proxy processes needs — a mesh CA, a trust
 * bundle file holding its anchor, the fake identity service issuing leaves to the named
 * workloads (token `tok-<name>`), and the fake destination service speaking mutual TLS.
 * `startProcessMeshFixture` runs the identity service as a child process instead, so a test
 * can fail, freeze or kill it (control-plane-process.ts).
 */
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeDestination, FakeIdentity } from "./control-plane-fakes.ts";
import { ControlPlaneProcess } from "./control-plane-process.ts";
import { createMeshCa, type MeshCa } from "./mesh-pki.ts";
import { tempDir } from "./proxy-process.ts";

export interface MeshFixture {
  readonly ca: MeshCa;
  readonly identity: FakeIdentity;
  readonly destination: FakeDestination;
  /** A proxy's `identity` configuration for workload `name` (its token file written). */
  identityConfig(name: string): { url: string; tokenPath: string; trustBundlePath: string; spiffeId: string };
  close(): Promise<void>;
}

/** `workloads` maps a workload's name to its SPIFFE ID. */
export async function startMeshFixture(
  name: string,
  workloads: Record<string, string>,
  leafLifetimeMs = 3_600_000,
): Promise<MeshFixture> {
  const ca = createMeshCa(name);
  const dir = tempDir(name);
  // Readable by proxies that run under their own UID (the capture tests).
  chmodSync(dir, 0o755);
  const bundlePath = join(dir, "bundle.pem");
  writeFileSync(bundlePath, ca.anchor.pem);
  const tokens = new Map(Object.entries(workloads).map(([w, id]) => [`tok-${w}`, id]));
  const identity = await new FakeIdentity(ca, tokens, leafLifetimeMs).start();
  const destination = await new FakeDestination({ ca }).start();
  return {
    ca,
    identity,
    destination,
    identityConfig(workload: string) {
      const spiffeId = workloads[workload];
      if (spiffeId === undefined) throw new Error(`no workload ${workload} in this mesh fixture`);
      const tokenPath = join(dir, `tok-${workload}.token`);
      writeFileSync(tokenPath, `tok-${workload}`);
      return { url: identity.url, tokenPath, trustBundlePath: bundlePath, spiffeId };
    },
    close: async () => {
      await Promise.all([destination.close(), identity.close()]);
    },
  };
}

export interface ProcessMeshFixture {
  readonly ca: MeshCa;
  readonly identity: ControlPlaneProcess;
  readonly destination: FakeDestination;
  /** A proxy's `identity` configuration for workload `name`. */
  identityConfig(
    name: string,
    renewFraction: number,
  ): { url: string; tokenPath: string; trustBundlePath: string; renewFraction: number };
  close(): Promise<void>;
}

/** Workloads `names` get SPIFFE IDs `<td>/<name>` and leaves of `leafLifetimeMs`. */
export async function startProcessMeshFixture(
  name: string,
  td: string,
  names: string[],
  leafLifetimeMs: number,
): Promise<ProcessMeshFixture> {
  const ca = createMeshCa(name);
  const dir = tempDir(name);
  const bundlePath = join(dir, "bundle.pem");
  writeFileSync(bundlePath, ca.anchor.pem);
  const tokens: Record<string, string> = {};
  for (const who of names) {
    writeFileSync(join(dir, `${who}.token`), `tok-${who}`);
    tokens[`tok-${who}`] = `${td}/${who}`;
  }
  const identity = await ControlPlaneProcess.start("identity", ca, { tokens, lifetimeMs: leafLifetimeMs });
  const destination = await new FakeDestination({ ca }).start();
  return {
    ca,
    identity,
    destination,
    identityConfig: (who, renewFraction) => ({
      url: identity.url,
      tokenPath: join(dir, `${who}.token`),
      trustBundlePath: bundlePath,
      renewFraction,
    }),
    close: async () => {
      await identity.kill();
      await destination.close();
    },
  };
}
