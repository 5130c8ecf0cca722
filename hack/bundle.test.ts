import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { parse } from "yaml";
import { clusterBinaries } from "../test/cluster/binaries.ts";
import { bundle, PROGRAMS } from "./bundle.ts";
import { krewBinaries, renderKrewManifest } from "./krew-manifest.ts";
import { readTar } from "./tar-archive.ts";

const execFileAsync = promisify(execFile);

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), "trellis-bundle-"));
  await bundle(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

// The bundles run from a folder with no node_modules and no package.json near them.
const run = (file: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(dir, file), ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...env },
    encoding: "utf8",
    timeout: 20_000,
  });

test("the operator bundle runs under plain node and knows its version", () => {
  const r = run("trellis.mjs", ["version", "--client", "-o", "json"]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "");
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
  assert.equal(JSON.parse(r.stdout).client, pkg.version);
});

test("the proxy bundle refuses a bad configuration with exit 2 and says why", () => {
  const r = run("proxy.mjs", [], { TRELLIS_PROXY_ADMIN_LISTEN: "127.0.0.1:0" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /configure inbound, outbound or both/);
});

test("the bundles take Node's built-ins without ES module facades, so the proxy starts without the parts it never uses", () => {
  // An `import … from "node:crypto"` goes through the module's ES facade, which reads every
  // export and so loads WebCrypto, zlib and the web streams through Node's lazy getters.
  for (const { name } of PROGRAMS) {
    const text = readFileSync(join(dir, `${name}.mjs`), "utf8");
    const imports = text.match(/(?:from|import)\s*["'](?:node:)?[a-z_/0-9]+["']/g) ?? [];
    assert.deepEqual(imports, ["from 'node:module'"], `${name}.mjs imports built-ins as ES modules`);
  }
  const out = join(dir, "loaded.json");
  const hook = join(dir, "loaded.cjs");
  writeFileSync(
    hook,
    `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.moduleLoadList)));`,
  );
  const r = spawnSync(process.execPath, ["--require", hook, join(dir, "proxy.mjs")], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", TRELLIS_PROXY_ADMIN_LISTEN: "127.0.0.1:0" },
    encoding: "utf8",
    timeout: 20_000,
  });
  assert.equal(r.status, 2, r.stderr);
  const loaded = JSON.parse(readFileSync(out, "utf8")) as string[];
  assert.ok(loaded.includes("NativeModule http2"), "the proxy loads what it uses");
  for (const unused of ["internal/crypto/webcrypto", "zlib", "internal/webstreams/readablestream"])
    assert.ok(!loaded.includes(`NativeModule ${unused}`), `the proxy loaded ${unused} at start`);
});

test("the proxy bundle loads its native addon from its own folder: capture mode starts, memory is released", async () => {
  const { spawn } = await import("node:child_process");
  const child = spawn(process.execPath, [join(dir, "proxy.mjs")], {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? "",
      TRELLIS_PROXY_CAPTURE: "true",
      TRELLIS_PROXY_OUTBOUND_LISTEN: "127.0.0.1:0",
      TRELLIS_PROXY_ADMIN_LISTEN: "127.0.0.1:0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    // Started means the addon loaded (a capture proxy without it exits at once, naming the paths).
    const started = await new Promise<{ ports: { admin: number } } | undefined>((resolve) => {
      let lines = "";
      child.stdout.on("data", (d: Buffer) => {
        lines += d.toString();
        out += d.toString();
        const line = lines.split("\n").find((l) => l.includes('"proxy started"'));
        if (line) resolve(JSON.parse(line) as { ports: { admin: number } });
      });
      void exited.then(() => resolve(undefined));
    });
    assert.ok(started, out);
    // The release ran once at start, through the same addon (limits.memoryReleaseIntervalMs).
    const metrics = await (await fetch(`http://127.0.0.1:${started.ports.admin}/metrics`)).text();
    assert.match(metrics, /process_memory_release_total\{result="(released|nothing)"\} [1-9]/, metrics);
  } finally {
    clearTimeout(timer);
    child.kill("SIGKILL");
    await exited;
  }
});

test("the control-plane bundle names its components when given none", () => {
  const r = run("controlplane.mjs", ["nonsense"], { KUBECONFIG: "/dev/null" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /injector\|identity\|destination/);
});

test("each bundle lists the npm packages inlined in it, and the proxy carries no Kubernetes client", () => {
  const proxy = JSON.parse(readFileSync(join(dir, "proxy.packages.json"), "utf8")) as { name: string }[];
  const operator = JSON.parse(readFileSync(join(dir, "trellis.packages.json"), "utf8")) as { name: string }[];
  assert.ok(proxy.some((p) => p.name === "pino"));
  assert.ok(!proxy.some((p) => p.name === "@kubernetes/client-node"));
  assert.ok(operator.some((p) => p.name === "@kubernetes/client-node"));
  assert.ok(operator.every((p) => !["typescript", "tsx", "esbuild"].includes(p.name)));
});

test("the kubectl plugin is one executable file, in a krew archive whose manifest names its sha256", () => {
  const r = spawnSync(join(dir, "kubectl-trellis"), ["version", "--client"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "" },
    encoding: "utf8",
    timeout: 20_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Client: +trellis \d+\.\d+\.\d+/);
  // Nothing but the answer: no runtime warning (Node's deprecated punycode, once) on any command.
  assert.equal(r.stderr, "");
  const archive = readFileSync(join(dir, "kubectl-trellis.tar.gz"));
  const [license, entry, ...more] = readTar(gunzipSync(archive));
  assert.equal(more.length, 0);
  assert.equal(license?.path, "LICENSE");
  assert.equal(entry?.path, "kubectl-trellis");
  assert.equal((entry?.mode ?? 0) & 0o777, 0o755);
  assert.deepEqual(entry?.data, readFileSync(join(dir, "kubectl-trellis")));
  const manifest = parse(readFileSync(join(dir, "krew", "trellis.yaml"), "utf8"));
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
  assert.equal(manifest.kind, "Plugin");
  assert.equal(manifest.metadata.name, "trellis");
  assert.equal(manifest.spec.version, `v${pkg.version}`);
  const [platform] = manifest.spec.platforms;
  assert.equal(platform.bin, "kubectl-trellis");
  assert.equal(platform.sha256, createHash("sha256").update(archive).digest("hex"));
  assert.match(platform.uri, new RegExp(`/v${pkg.version}/kubectl-trellis\\.tar\\.gz$`));
});

test("krew's own validator accepts the manifest, and krew installs the plugin from it", async () => {
  const krew = krewBinaries();
  const archive = readFileSync(join(dir, "kubectl-trellis.tar.gz"));
  // The archive served on loopback stands for the release download.
  const server = createServer((_req, res) => res.end(archive));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const work = mkdtempSync(join(tmpdir(), "trellis-krew-"));
  try {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    const manifest = join(work, "trellis.yaml");
    writeFileSync(
      manifest,
      renderKrewManifest(`v${pkg.version}`, archive, `http://127.0.0.1:${port}/kubectl-trellis.tar.gz`),
    );
    const PATH = `${krew}:${dirname(clusterBinaries().kubectl)}:${process.env.PATH}`;
    const validated = await execFileAsync(join(krew, "validate-krew-manifest"), ["-manifest", manifest], {
      env: { PATH },
    });
    assert.match(validated.stderr, /structural validation OK[\s\S]*installed {2}spec\.platforms\[0\]/);
    const root = join(work, "krew-root");
    const env = { PATH, KREW_ROOT: root, KREW_NO_UPGRADE_CHECK: "1", HOME: work };
    await execFileAsync("kubectl", ["krew", "install", "--manifest", manifest], { env });
    const version = await execFileAsync("kubectl", ["trellis", "version", "--client"], {
      env: { ...env, PATH: `${join(root, "bin")}:${PATH}` },
    });
    assert.equal(version.stdout, `Client:     trellis ${pkg.version}\n`);
  } finally {
    server.close();
    rmSync(work, { recursive: true, force: true });
  }
});
