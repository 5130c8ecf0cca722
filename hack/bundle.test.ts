import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { bundle } from "./bundle.ts";

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
  const r = run("trellis.mjs", ["version"]);
  assert.equal(r.status, 0, r.stderr);
  const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
  assert.equal(r.stdout.trim(), pkg.version);
});

test("the proxy bundle refuses a bad configuration with exit 2 and says why", () => {
  const r = run("proxy.mjs", [], { TRELLIS_PROXY_ADMIN_LISTEN: "127.0.0.1:0" });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /configure inbound, outbound or both/);
});

test("the proxy bundle loads its original-destination addon from its own folder in capture mode", async () => {
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
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    out += d.toString();
  });
  // Started means the addon loaded (a capture proxy without it exits at once, naming the paths).
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.stdout.on("data", () => {
      if (out.includes("proxy started")) child.kill("SIGKILL");
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  assert.match(out, /proxy started/, out);
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
