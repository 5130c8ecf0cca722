// The OCI image writer: the same inputs give the same bytes, the layout it writes is one that
// parses (every blob is named by its digest, the config names the layers' uncompressed
// digests), GNU tar reads what it writes, and any change of input changes the digest.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { type ImageSpec, layerOf, ociArchive, ociImage, sha256, sourceDateEpoch } from "./oci-image.ts";
import { readTar, type TarEntry } from "./tar-archive.ts";

const entries = (app = "console.log('hello')\n"): TarEntry[] => [
  { type: "dir", path: "app", mode: 0o755 },
  { type: "file", path: "app/main.mjs", mode: 0o644, data: Buffer.from(app) },
  { type: "dir", path: "etc", mode: 0o755 },
  {
    type: "file",
    path: "etc/passwd",
    mode: 0o644,
    data: Buffer.from("nonroot:x:65532:65532::/:/sbin/nologin\n"),
  },
  { type: "dir", path: "tmp", mode: 0o1777 },
  {
    type: "dir",
    path: "usr/lib/x86_64-linux-gnu/a-rather-long-directory-name/that-goes-past-the-hundred",
    mode: 0o755,
  },
  {
    type: "file",
    path: "usr/lib/x86_64-linux-gnu/a-rather-long-directory-name/that-goes-past-the-hundred/byte-limit-of-ustar-names.txt",
    mode: 0o644,
    data: Buffer.alloc(1000, 7),
  },
  { type: "symlink", path: "usr/bin/nodejs", target: "node" },
];

const spec = (overrides: Partial<ImageSpec> = {}, app?: string): ImageSpec => ({
  reference: "localhost/trellis/test:0.1.0",
  epoch: 0,
  layers: [layerOf(entries(app), 0, "test layer")],
  config: {
    User: "65532:65532",
    Entrypoint: ["/usr/bin/node", "/app/main.mjs"],
    Env: ["PATH=/usr/bin"],
    Labels: { "org.opencontainers.image.version": "0.1.0" },
  },
  ...overrides,
});

const archiveOf = (s: ImageSpec) => ociArchive(ociImage(s), s.epoch);

test("two builds of the same inputs give the same archive, byte for byte", () => {
  const a = archiveOf(spec());
  const b = archiveOf(spec());
  assert.equal(sha256(a), sha256(b));
  assert.equal(ociImage(spec()).digest, ociImage(spec()).digest);
});

test("the archive is an OCI image layout whose blobs are named by their digests", () => {
  const files = new Map(readTar(archiveOf(spec())).map((e) => [e.path, e]));
  assert.deepEqual(JSON.parse(files.get("oci-layout")!.data.toString()), { imageLayoutVersion: "1.0.0" });
  for (const [path, e] of files)
    if (path.startsWith("blobs/sha256/") && e.type === "file")
      assert.equal(sha256(e.data), `sha256:${path.slice("blobs/sha256/".length)}`);
  const blob = (digest: string) => files.get(`blobs/sha256/${digest.slice(7)}`)!.data;
  const index = JSON.parse(files.get("index.json")!.data.toString());
  assert.equal(index.manifests.length, 1);
  assert.equal(
    index.manifests[0].annotations["org.opencontainers.image.ref.name"],
    "localhost/trellis/test:0.1.0",
  );
  const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
  assert.equal(manifest.mediaType, "application/vnd.oci.image.manifest.v1+json");
  const config = JSON.parse(blob(manifest.config.digest).toString());
  assert.equal(config.created, "1970-01-01T00:00:00Z");
  assert.equal(config.config.User, "65532:65532");
  const layer = gunzipSync(blob(manifest.layers[0].digest));
  assert.equal(sha256(layer), config.rootfs.diff_ids[0]);
  const inLayer = readTar(layer);
  assert.deepEqual(
    inLayer.map((e) => e.path),
    entries().map((e) => e.path),
  );
  assert.ok(inLayer.every((e) => e.uid === 0 && e.gid === 0 && e.mtime === 0));
  assert.equal(inLayer.find((e) => e.path === "tmp")!.mode, 0o1777);
});

test("GNU tar extracts a layer as written: long names, modes, links", () => {
  const dir = mkdtempSync(join(tmpdir(), "trellis-oci-"));
  try {
    writeFileSync(join(dir, "layer.tar.gz"), layerOf(entries(), 0, "test").blob);
    const r = spawnSync("tar", ["-xzf", "layer.tar.gz", "-C", ".", "--no-same-owner"], {
      cwd: dir,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    const long = entries()[6]!;
    assert.equal(readFileSync(join(dir, long.path)).length, 1000);
    assert.equal(statSync(join(dir, "tmp")).mode & 0o7777, 0o1777);
    assert.equal(readFileSync(join(dir, "app/main.mjs"), "utf8"), "console.log('hello')\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a change in any input changes the digest", () => {
  const base = ociImage(spec()).digest;
  assert.notEqual(ociImage(spec({}, "console.log('bye')\n")).digest, base);
  const labelled = spec();
  labelled.config.Labels["org.opencontainers.image.version"] = "0.1.1";
  assert.notEqual(ociImage(labelled).digest, base);
  // The name is not content: the same image under another tag keeps its digest.
  assert.equal(ociImage(spec({ reference: "localhost/trellis/test:0.1.1" })).digest, base);
  assert.notEqual(ociImage(spec({ epoch: 1 })).digest, base);
});

test("SOURCE_DATE_EPOCH sets the timestamps, and nonsense in it is refused", () => {
  assert.equal(sourceDateEpoch({}), 0);
  assert.equal(sourceDateEpoch({ SOURCE_DATE_EPOCH: "1700000000" }), 1700000000);
  assert.throws(() => sourceDateEpoch({ SOURCE_DATE_EPOCH: "yesterday" }), /whole seconds/);
});

test("a file's extended attributes (file capabilities) travel in a pax header that GNU tar applies", (t) => {
  // security.capability for cap_net_admin,cap_net_raw+p (VFS_CAP_REVISION_2, no effective bit).
  const caps = Buffer.from("0000000200300000000000000000000000000000", "hex");
  const layer: TarEntry[] = [
    { type: "dir", path: "usr", mode: 0o755 },
    {
      type: "file",
      path: "usr/capsh",
      mode: 0o755,
      data: Buffer.from("#!/bin/true\n"),
      xattrs: { "security.capability": caps },
    },
    { type: "file", path: "usr/plain", mode: 0o644, data: Buffer.from("x") },
  ];
  const read = readTar(gunzipSync(layerOf(layer, 0, "caps").blob));
  assert.deepEqual(
    read.map((e) => [e.path, Object.keys(e.xattrs)]),
    [
      ["usr", []],
      ["usr/capsh", ["security.capability"]],
      ["usr/plain", []],
    ],
  );
  assert.deepEqual(read[1]?.xattrs["security.capability"], caps);
  if (process.getuid?.() !== 0 || spawnSync("getcap", ["-h"]).error) return t.skip("needs root and getcap");
  const dir = mkdtempSync(join(tmpdir(), "trellis-oci-"));
  try {
    writeFileSync(join(dir, "layer.tar.gz"), layerOf(layer, 0, "caps").blob);
    const r = spawnSync("tar", ["--xattrs", "--xattrs-include=*", "-xzf", "layer.tar.gz"], {
      cwd: dir,
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      spawnSync("getcap", [join(dir, "usr/capsh")], { encoding: "utf8" }).stdout,
      /cap_net_admin,cap_net_raw=p/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
