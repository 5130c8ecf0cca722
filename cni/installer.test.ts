// The installer on a node's folders (temporary ones here, needs root for the namespace part):
// the tree and launcher installed and answering, a pod's capture installed by the installed
// plugin from its own tree, chained once into the file the runtime reads, kept chained when that
// file is rewritten or another takes its place, a new version switched in, and everything taken
// out again with the configuration restored byte for byte. Then the same as processes.
import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { defaultCaptureSettings } from "../capture/capture-settings.ts";
import { assembleCniImageRoot, LAUNCHER_IN_IMAGE } from "../hack/cni-image.ts";
import {
  CAPTURE_ANNOTATION,
  captureAnnotationValue,
  POD_ANNOTATIONS_CAPABILITY,
} from "./capture-annotation.ts";
import { chainPlugin } from "./conflist.ts";
import {
  checkInstalledPlugin,
  installedProblem,
  installTree,
  remnants,
  syncChain,
  treeId,
  uninstall,
} from "./installer.ts";
import { PLUGIN_NAME, TREES_DIR } from "./plugin-tree.ts";

const here = dirname(fileURLToPath(import.meta.url));
const work = mkdtempSync(join(tmpdir(), "trellis-cni-installer-"));
const source = join(work, "image");
const binDir = join(work, "node/opt/cni/bin");
const confDir = join(work, "node/etc/cni/net.d");
const harness = readFileSync(join(here, "testdata/harness.conflist"), "utf8");
const logs: string[] = [];
const log = (msg: string) => logs.push(msg);

const paths = () => ({ binDir, confDir, sourceRoot: source, launcher: join(source, LAUNCHER_IN_IMAGE) });

describe("the trellis-cni installer", { timeout: 300_000 }, () => {
  before(async () => {
    await assembleCniImageRoot(work, source);
    mkdirSync(binDir, { recursive: true });
    mkdirSync(confDir, { recursive: true });
    // The node's other plugins, as links the installer must leave alone.
    symlinkSync("/usr/lib/cni/bridge", join(binDir, "bridge"));
    writeFileSync(join(confDir, "10-trellis.conflist"), harness);
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it("installs the tree and the launcher, which answers VERSION from the node's folder", () => {
    const { id, changed } = installTree(paths(), log);
    assert.equal(changed, true);
    assert.equal(readlinkSync(join(binDir, TREES_DIR, "current")), id);
    assert.match(checkInstalledPlugin(binDir), /"supportedVersions":\[.*"1.0.0"/);
    assert.equal(installTree(paths(), log).changed, false, "a second install writes nothing");
    assert.equal(readlinkSync(join(binDir, "bridge")), "/usr/lib/cni/bridge");
  });

  it("installs a meshed pod's capture from the tree alone (its loader, libraries, nsenter and iptables)", () => {
    const ns = `trellis-cni-inst-${process.pid % 100000}`;
    execFileSync("ip", ["netns", "add", ns]);
    try {
      const r = spawnSync(join(binDir, PLUGIN_NAME), [], {
        input: JSON.stringify({
          cniVersion: "1.0.0",
          name: "t",
          type: PLUGIN_NAME,
          prevResult: { cniVersion: "1.0.0", ips: [{ address: "10.9.0.5/24" }] },
          runtimeConfig: {
            [POD_ANNOTATIONS_CAPABILITY]: {
              [CAPTURE_ANNOTATION]: captureAnnotationValue(defaultCaptureSettings()),
            },
          },
        }),
        encoding: "utf8",
        // What containerd gives a plugin: no PATH to the node's tools is needed.
        env: {
          CNI_COMMAND: "ADD",
          CNI_NETNS: `/run/netns/${ns}`,
          CNI_IFNAME: "eth0",
          CNI_CONTAINERID: "x",
          PATH: "/nonexistent",
        },
      });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stderr, /capture installed/);
      const saved = execFileSync("ip", ["netns", "exec", ns, "iptables-nft-save", "-t", "nat"], {
        encoding: "utf8",
      });
      assert.match(saved, /-A OUTPUT -j TRELLIS_OUTPUT/);
      assert.match(saved, /-A TRELLIS_INBOUND -p tcp -j REDIRECT --to-ports 4143/);
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  });

  it("chains once into the file the runtime reads, and again when that file is rewritten", () => {
    assert.deepEqual(syncChain(confDir, log), { file: "10-trellis.conflist" });
    const chained = readFileSync(join(confDir, "10-trellis.conflist"), "utf8");
    assert.equal(chained, (chainPlugin(harness) as { text: string }).text);
    assert.equal(installedProblem({ binDir, confDir }), undefined);
    writeFileSync(join(confDir, "10-trellis.conflist"), harness); // the network plugin rewrites it
    assert.match(installedProblem({ binDir, confDir }) ?? "", /does not list trellis-cni/);
    syncChain(confDir, log);
    assert.equal(readFileSync(join(confDir, "10-trellis.conflist"), "utf8"), chained);
  });

  it("follows the runtime to a file that sorts first, restoring the one it leaves", () => {
    const other = JSON.stringify({ cniVersion: "1.0.0", name: "new", plugins: [{ type: "ptp" }] }, null, 2);
    writeFileSync(join(confDir, "05-new.conflist"), other);
    writeFileSync(join(confDir, "00-broken.conflist"), "{ not json");
    assert.deepEqual(syncChain(confDir, log), { file: "05-new.conflist" });
    assert.equal(readFileSync(join(confDir, "10-trellis.conflist"), "utf8"), harness);
    rmSync(join(confDir, "05-new.conflist"));
    rmSync(join(confDir, "00-broken.conflist"));
    assert.deepEqual(syncChain(confDir, log), { file: "10-trellis.conflist" });
  });

  it("switches to a new version's tree, keeping the one it replaced only", () => {
    const first = readlinkSync(join(binDir, TREES_DIR, "current"));
    writeFileSync(join(source, "app/version"), "2\n");
    const second = installTree(paths(), log).id;
    assert.notEqual(second, first);
    assert.equal(treeId(source), second);
    writeFileSync(join(source, "app/version"), "3\n");
    const third = installTree(paths(), log).id;
    assert.deepEqual(readdirSync(join(binDir, TREES_DIR)).sort(), [second, third, "current"].sort());
    checkInstalledPlugin(binDir);
  });

  it("uninstalls: configuration restored byte for byte, its files gone, the node's own left", () => {
    uninstall({ binDir, confDir }, log);
    assert.equal(readFileSync(join(confDir, "10-trellis.conflist"), "utf8"), harness);
    assert.deepEqual(readdirSync(binDir), ["bridge"]);
    assert.deepEqual(remnants({ binDir, confDir }), []);
  });

  it("runs as the DaemonSet runs it: install keeps the chain, SIGTERM leaves it, uninstall removes it", async () => {
    const state = join(work, "state");
    const cli = (role: string, extra: string[] = []) => [
      "--import",
      "tsx",
      join(here, "main.ts"),
      role,
      `--bin-dir=${binDir}`,
      `--conf-dir=${confDir}`,
      `--source-root=${source}`,
      `--launcher=${join(source, LAUNCHER_IN_IMAGE)}`,
      `--state-dir=${state}`,
      "--interval-ms=300",
      ...extra,
    ];
    const ready = (extra: string[] = []) =>
      spawnSync(process.execPath, cli("ready", extra), { encoding: "utf8" });
    const until = async (what: string, ok: () => boolean) => {
      for (let i = 0; i < 120 && !ok(); i++) await new Promise((r) => setTimeout(r, 250));
      assert.ok(ok(), what);
    };
    const installer = spawn(process.execPath, cli("install"), { stdio: ["ignore", "pipe", "inherit"] });
    await until("installed and ready", () => ready().status === 0);
    writeFileSync(join(confDir, "10-trellis.conflist"), harness);
    await until(
      "chained again after a rewrite",
      () => readFileSync(join(confDir, "10-trellis.conflist"), "utf8") !== harness,
    );
    installer.kill("SIGTERM");
    await new Promise((r) => installer.once("exit", r));
    assert.equal(installedProblem({ binDir, confDir }), undefined, "SIGTERM leaves the plugin in place");
    const remover = spawn(process.execPath, cli("uninstall"), { stdio: "ignore" });
    await until("uninstalled", () => ready(["--uninstalled"]).status === 0);
    remover.kill("SIGTERM");
    await new Promise((r) => remover.once("exit", r));
    assert.equal(readFileSync(join(confDir, "10-trellis.conflist"), "utf8"), harness);
    assert.deepEqual(readdirSync(binDir), ["bridge"]);
  });
});
