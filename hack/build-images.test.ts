// The real image build, twice: the same sources give the same digests; two proxy versions differ
// only in their version label and variable; what the images hold (non-root user, labels, no shell
// or package manager, the bundle's package list); and the proxy started from its image's root
// filesystem, mounted read-only, as its own user, answers /live.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { operatorNodeFlags } from "../operator/runtime-flags.ts";
import { freePort } from "../test/cluster/free-port.ts";
import { type BuiltImage, buildImages, defaultOptions } from "./build-images.ts";
import { pinnedRuntime } from "./node-runtime.ts";
import { sha256 } from "./oci-image.ts";
import { type ReadEntry, readTar } from "./tar-archive.ts";

let dir: string;
const builds: Array<{ images: BuiltImage[]; seconds: number }> = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "trellis-images-"));
  for (const [name, proxyVersion] of [
    ["a", "0.1.0"],
    ["b", "0.1.1"],
  ] as const) {
    const started = Date.now();
    const { images } = await buildImages(
      defaultOptions({
        version: "0.1.0",
        proxyVersion,
        brokenProxy: "0.1.2-broken",
        out: join(dir, name),
        revision: "0123456789abcdef0123456789abcdef01234567",
        source: "https://example.invalid/trellis",
        epoch: 0,
      }),
    );
    builds.push({ images, seconds: (Date.now() - started) / 1000 });
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

const image = (build: number, name: string) => builds[build]!.images.find((i) => i.name === name)!;

interface Opened {
  manifest: { layers: Array<{ digest: string }> };
  config: { created: string; config: { User: string; Env: string[]; Labels: Record<string, string> } };
  files: Map<string, ReadEntry>;
}

const opened = new Map<string, Opened>();

/** The manifest, config and root filesystem (the layers applied in order) of an archive. */
function open(archive: string): Opened {
  const known = opened.get(archive);
  if (known) return known;
  const blobs = new Map(readTar(readFileSync(archive)).map((e) => [e.path, e.data]));
  const blob = (digest: string) => blobs.get(`blobs/sha256/${digest.slice(7)}`)!;
  const index = JSON.parse(blobs.get("index.json")!.toString());
  const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
  const config = JSON.parse(blob(manifest.config.digest).toString());
  const files = new Map<string, ReadEntry>();
  for (const l of manifest.layers) for (const e of readTar(gunzipSync(blob(l.digest)))) files.set(e.path, e);
  opened.set(archive, { manifest, config, files });
  return opened.get(archive)!;
}

test("two builds of the same sources give the same images, byte for byte", (t) => {
  t.diagnostic(`build times: ${builds.map((b) => `${b.seconds.toFixed(1)} s`).join(", ")}`);
  for (const name of ["operator", "controlplane", "init", "proxy-never-ready"]) {
    const [a, b] = [image(0, name), image(1, name)];
    t.diagnostic(`${a.reference} ${a.digest} ${(a.archiveBytes / 1e6).toFixed(1)} MB`);
    assert.equal(a.digest, b.digest, name);
    assert.equal(sha256(readFileSync(a.archive)), sha256(readFileSync(b.archive)), name);
  }
});

test("proxy 0.1.0 and 0.1.1 differ only in their version label and variable", () => {
  const [a, b] = [open(image(0, "proxy").archive), open(image(1, "proxy").archive)];
  assert.equal(image(1, "proxy").reference, "localhost/trellis/proxy:0.1.1");
  assert.deepEqual(a.manifest.layers, b.manifest.layers);
  assert.deepEqual(b.config.config.Env, [
    "PATH=/usr/bin",
    "TRELLIS_PROXY_VERSION=0.1.1",
    "MALLOC_ARENA_MAX=1",
  ]);
  assert.equal(b.config.config.Labels["org.opencontainers.image.version"], "0.1.1");
  const same = (c: Opened["config"]) => ({
    ...c.config,
    Env: c.config.Env.filter((e) => !e.startsWith("TRELLIS_PROXY_VERSION=")),
    Labels: { ...c.config.Labels, "org.opencontainers.image.version": "" },
  });
  assert.deepEqual(same(a.config), same(b.config));
});

test("every image runs as a non-root user and carries its OCI labels and fixed times", () => {
  for (const i of builds[0]!.images) {
    const { config } = open(i.archive);
    assert.notEqual(Number(config.config.User.split(":")[0]), 0, i.name);
    assert.equal(config.created, "1970-01-01T00:00:00Z");
    const labels = config.config.Labels;
    assert.equal(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert.equal(labels["org.opencontainers.image.revision"], "0123456789abcdef0123456789abcdef01234567");
    assert.equal(labels["org.opencontainers.image.source"], "https://example.invalid/trellis");
    assert.equal(labels["org.opencontainers.image.version"], i.reference.split(":").pop());
    assert.ok(labels["org.opencontainers.image.title"]);
    assert.equal(labels["dev.trellis.test-image"] !== undefined, i.name === "proxy-never-ready", i.name);
  }
});

test("the proxy image holds Node, its libraries and the app: no shell, package manager or compiler", () => {
  const { files } = open(image(0, "proxy").archive);
  const regular = [...files.values()].filter((e) => e.type === "file").map((e) => e.path);
  const forbidden =
    /(^|\/)(sh|bash|dash|busybox|npm|npx|corepack|yarn|apt|dpkg|gcc|cc|g\+\+|clang|ld|make|python3?)$/;
  assert.deepEqual(
    regular.filter((p) => forbidden.test(p)),
    [],
  );
  assert.ok(!regular.some((p) => p.includes("node_modules")));
  assert.ok(
    regular.every((p) => /^(app|etc|lib|lib64|usr\/bin\/node$|usr\/share\/doc)\b/.test(p)),
    regular.join("\n"),
  );
  assert.ok(files.has("usr/share/doc/node/LICENSE"));
});

test("the package list in each image is the one the bundle wrote", () => {
  for (const [name, program] of [
    ["operator", "trellis"],
    ["controlplane", "controlplane"],
    ["proxy", "proxy"],
  ] as const) {
    const { files } = open(image(0, name).archive);
    const dist = join(dir, "a/dist", `${program}.packages.json`);
    assert.equal(files.get("app/packages.json")!.data.toString(), readFileSync(dist, "utf8"), name);
  }
  const proxy = JSON.parse(open(image(0, "proxy").archive).files.get("app/packages.json")!.data.toString());
  assert.ok(!proxy.some((p: { name: string }) => p.name === "@kubernetes/client-node"));
});

const CAP_NAMES: Record<number, string> = { 12: "cap_net_admin", 13: "cap_net_raw" };

/** `security.capability` (revision 2) → setcap's text form, e.g. "cap_net_admin,cap_net_raw+p". */
function capabilityText(xattr: Buffer): string {
  const permitted = xattr.readUInt32LE(4);
  const names = Object.keys(CAP_NAMES)
    .map(Number)
    .filter((bit) => permitted & (1 << bit))
    .map((bit) => CAP_NAMES[bit]);
  return `${names.join(",")}+${xattr.readUInt32LE(0) & 1 ? "ep" : "p"}`;
}

/** Writes an image's root filesystem into a folder, as a runtime would (file capabilities too). */
function unpack(files: Map<string, ReadEntry>, into: string): void {
  for (const e of files.values()) {
    const to = join(into, e.path);
    mkdirSync(e.type === "dir" ? to : dirname(to), { recursive: true });
    if (e.type === "file") writeFileSync(to, e.data);
    if (e.type === "symlink") symlinkSync(e.target, to);
    if (e.type !== "symlink") chmodSync(to, e.mode);
    const caps = e.xattrs["security.capability"];
    if (caps) assert.equal(spawnSync("setcap", [capabilityText(caps), to]).status, 0, `setcap ${to}`);
  }
}

/** Starts an image's entrypoint in its unpacked rootfs, mounted read-only, as the image's user. */
async function runReadOnly(
  archive: string,
  env: Record<string, string>,
  args: string[] = [],
  net = false,
  /** Words run before chroot, e.g. a setpriv that shrinks the capability bounding set. */
  wrap = "",
) {
  const { config, files } = open(archive);
  const rootfs = mkdtempSync(join(dir, "rootfs-"));
  chmodSync(rootfs, 0o755);
  unpack(files, rootfs);
  const c = config.config as unknown as { User: string; Entrypoint: string[]; Env: string[] };
  // With its own network namespace it also gets /proc (trellis-init reads its capabilities there).
  if (net) mkdirSync(join(rootfs, "proc"));
  const proc = net ? `mount -t proc proc "$1/proc" && ` : "";
  const script = `mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && ${proc}exec ${wrap} chroot --userspec=${c.User} "$@"`;
  const child = spawn(
    "unshare",
    [
      "--mount",
      "--propagation",
      "private",
      ...(net ? ["--net"] : []),
      "sh",
      "-c",
      script,
      "sh",
      rootfs,
      ...c.Entrypoint,
      ...args,
    ],
    {
      // The image's variables, but the host's PATH: unshare, mount and chroot run before the chroot.
      env: {
        ...Object.fromEntries(c.Env.map((e) => e.split("=", 2) as [string, string])),
        PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  return { child, output: () => output };
}

async function get(url: string, output: () => string, deadline = Date.now() + 30_000): Promise<number> {
  for (;;) {
    try {
      return (await fetch(url)).status;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${url}: ${(err as Error).message}; output:\n${output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const canMount = process.getuid?.() === 0 && spawnSync("unshare", ["--mount", "true"]).status === 0;

test("node --version inside every image is the pinned runtime's", { skip: !canMount }, () => {
  for (const i of builds[0]!.images) {
    const { config, files } = open(i.archive);
    const rootfs = mkdtempSync(join(dir, "version-"));
    chmodSync(rootfs, 0o755);
    unpack(files, rootfs);
    const user = config.config.User;
    // Inside the image's root: its own node binary and the libraries it carries, as its user.
    const r = spawnSync("chroot", [`--userspec=${user}`, rootfs, "/usr/bin/node", "--version"], {
      encoding: "utf8",
    });
    rmSync(rootfs, { recursive: true, force: true });
    assert.equal(r.stdout.trim(), `v${pinnedRuntime.version}`, `${i.name}: ${r.stderr}`);
    const runtime = JSON.parse(files.get("usr/share/doc/runtime.json")!.data.toString());
    assert.equal(runtime[0].version, pinnedRuntime.version, i.name);
  }
});

test("the proxy runs from its image on a read-only root as its own user and answers /live", {
  skip: !canMount,
}, async () => {
  const [admin, outbound] = [await freePort(), await freePort()];
  const { child, output } = await runReadOnly(image(0, "proxy").archive, {
    TRELLIS_PROXY_ADMIN_LISTEN: `127.0.0.1:${admin}`,
    TRELLIS_PROXY_OUTBOUND_LISTEN: `127.0.0.1:${outbound}`,
  });
  try {
    assert.equal(await get(`http://127.0.0.1:${admin}/live`, output), 200);
    assert.match(output(), /"pid":\d+.*proxy started/);
  } finally {
    child.kill("SIGTERM");
  }
});

test("the operator image starts node with the operator's measured flags and variables, and the operator runs with them", {
  skip: !canMount,
}, async () => {
  const { config } = open(image(0, "operator").archive);
  assert.deepEqual((config.config as unknown as { Entrypoint: string[] }).Entrypoint, [
    "/usr/bin/node",
    ...operatorNodeFlags,
    "/app/trellis.mjs",
  ]);
  assert.deepEqual(config.config.Env, [
    "PATH=/usr/bin",
    "TRELLIS_OPERATOR_VERSION=0.1.0",
    "MALLOC_ARENA_MAX=1",
  ]);
  const { child, output } = await runReadOnly(image(0, "operator").archive, {}, ["version", "--client"]);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  assert.equal(code, 0, output());
  assert.match(output(), /^Client: +trellis 0\.1\.0/m);
});

test("the never-ready test proxy is live and never ready", { skip: !canMount }, async () => {
  const admin = await freePort();
  const { child, output } = await runReadOnly(image(0, "proxy-never-ready").archive, {
    TRELLIS_PROXY_ADMIN_LISTEN: `127.0.0.1:${admin}`,
  });
  try {
    assert.equal(await get(`http://127.0.0.1:${admin}/live`, output), 200);
    assert.equal(await get(`http://127.0.0.1:${admin}/ready`, output), 503);
  } finally {
    child.kill("SIGTERM");
  }
});

test("the init image's entrypoint holds NET_ADMIN and NET_RAW as file capabilities, and iptables serves both backends", () => {
  const { files, config } = open(image(0, "init").archive);
  assert.equal(image(0, "init").reference, "localhost/trellis/init:0.1.0");
  assert.equal(config.config.User, "65532:65532");
  assert.deepEqual((config.config as unknown as { Entrypoint: string[] }).Entrypoint, [
    "/usr/sbin/trellis-init",
  ]);
  const entry = files.get("usr/sbin/trellis-init");
  assert.equal(
    capabilityText(entry?.xattrs["security.capability"] ?? Buffer.alloc(8)),
    "cap_net_admin,cap_net_raw+p",
  );
  for (const tool of [
    "iptables-nft-restore",
    "ip6tables-nft-save",
    "iptables-legacy-restore",
    "ip6tables-legacy-save",
  ])
    assert.match(files.get(`usr/sbin/${tool}`)?.target ?? "", /^xtables-(nft|legacy)-multi$/, tool);
  assert.ok(files.has("usr/lib/x86_64-linux-gnu/xtables/libxt_REDIRECT.so"));
  assert.ok(files.has("usr/share/doc/iptables/copyright"));
  // Only the init image has file capabilities.
  for (const other of ["operator", "controlplane", "proxy"])
    assert.ok(
      ![...open(image(0, other).archive).files.values()].some((e) => Object.keys(e.xattrs).length > 0),
      other,
    );
});

test("trellis-init runs from its image as its non-root user and installs the rules in a new network namespace", {
  skip: !canMount || spawnSync("setcap", ["-h"]).error !== undefined,
}, async () => {
  const { child, output } = await runReadOnly(
    image(0, "init").archive,
    {},
    ["--skip-outbound-ports=5432"],
    true,
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.equal(code, 0, output());
  assert.match(output(), /trellis-init: backend nft \(nf_tables works\)/);
  assert.match(output(), /trellis-init: IPv4: 8 rules in TRELLIS_INBOUND and TRELLIS_OUTPUT \(nft\)/);
});

test("trellis-init from its image names the cause when the container was not granted NET_ADMIN", {
  skip: !canMount || spawnSync("setcap", ["-h"]).error !== undefined,
}, async () => {
  const { child, output } = await runReadOnly(
    image(0, "init").archive,
    {},
    [],
    true,
    "setpriv --bounding-set=-net_admin,-net_raw --",
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  assert.equal(code, 1, output());
  assert.match(
    output(),
    /trellis-init: cannot program the capture rules: the container was not granted NET_ADMIN and NET_RAW .*Pod Security Standard/,
  );
});
