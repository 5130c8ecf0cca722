// Container images for the real node, made on this machine without a registry or a daemon.
//
// Owns: the pause program (a static Go binary, built once into the cache), writing an OCI image
// archive from a folder (one uncompressed layer, written with GNU tar, digests from node:crypto),
// and a Node.js runtime image (the pinned Node of hack/node-runtime.json as /usr/bin/node, the
// shared libraries `ldd` lists, and the files a test gives). Archives are cached under
// ~/.cache/trellis/images, keyed by a hash of their inputs.
// Does not own: importing archives into containerd (real-node.ts) or the Trellis product images.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ensureNode } from "../../hack/node-runtime.ts";
import { cacheRoot } from "./binaries.ts";

export const PAUSE_IMAGE = "localhost/trellis-pause:1";

export interface ImageConfig {
  /** Full reference, e.g. localhost/node-app:1. */
  name: string;
  entrypoint: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
}

const imagesDir = join(cacheRoot, "images");

function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

function sha256File(path: string): string {
  const hash = createHash("sha256");
  hash.update(readFileSync(path));
  return hash.digest("hex");
}

const pauseSource = `package main

import (
	"os"
	"os/signal"
	"syscall"
)

// Holds the pod's namespaces; reaps orphans; exits on SIGINT or SIGTERM.
func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	child := make(chan os.Signal, 16)
	signal.Notify(child, syscall.SIGCHLD)
	for {
		select {
		case <-stop:
			return
		case <-child:
			for {
				var status syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}
`;

/** Builds the pause binary (CGO_ENABLED=0, static) once; returns its path. */
export function pauseBinary(): string {
  const dir = join(cacheRoot, "pause", sha256(pauseSource).slice(0, 12));
  const binary = join(dir, "pause");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "main.go"), pauseSource);
  writeFileSync(join(dir, "go.mod"), "module trellis.dev/pause\n\ngo 1.21\n");
  execFileSync("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", `${binary}.tmp`, "."], {
    cwd: dir,
    env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  renameSync(`${binary}.tmp`, binary);
  return binary;
}

/**
 * Writes an OCI image archive (an oci-layout folder in a tar) whose single layer is `rootfs`.
 * The index names the image with both the OCI and the containerd annotation, so that
 * `ctr images import` registers it under `config.name`.
 */
export function writeOciArchive(rootfs: string, config: ImageConfig, archive: string): void {
  const work = mkdtempSync(join(tmpdir(), "trellis-oci-"));
  try {
    const blobs = join(work, "layout", "blobs", "sha256");
    mkdirSync(blobs, { recursive: true });
    const layerTar = join(work, "layer.tar");
    execFileSync("tar", [
      "-C",
      rootfs,
      "--sort=name",
      "--mtime=@0",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "-cf",
      layerTar,
      ".",
    ]);
    const layerDigest = sha256File(layerTar);
    const layerSize = statSync(layerTar).size;
    renameSync(layerTar, join(blobs, layerDigest));
    const putBlob = (json: unknown) => {
      const data = Buffer.from(JSON.stringify(json));
      const digest = sha256(data);
      writeFileSync(join(blobs, digest), data);
      return { digest: `sha256:${digest}`, size: data.length };
    };
    const imageConfig = putBlob({
      architecture: "amd64",
      os: "linux",
      config: {
        Entrypoint: config.entrypoint,
        Cmd: config.cmd,
        Env: config.env ?? ["PATH=/usr/local/bin:/usr/bin:/bin"],
        WorkingDir: config.workingDir ?? "/",
      },
      rootfs: { type: "layers", diff_ids: [`sha256:${layerDigest}`] },
    });
    const manifest = putBlob({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", ...imageConfig },
      layers: [
        {
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: `sha256:${layerDigest}`,
          size: layerSize,
        },
      ],
    });
    const layout = join(work, "layout");
    writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    writeFileSync(
      join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            ...manifest,
            platform: { architecture: "amd64", os: "linux" },
            annotations: {
              "io.containerd.image.name": config.name,
              "org.opencontainers.image.ref.name": config.name,
            },
          },
        ],
      }),
    );
    mkdirSync(dirname(archive), { recursive: true });
    execFileSync("tar", ["-C", layout, "--sort=name", "--mtime=@0", "-cf", `${archive}.tmp`, "."]);
    renameSync(`${archive}.tmp`, archive);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Returns a cached archive for `key`, building it with `build(rootfs)` when missing. */
function cachedArchive(config: ImageConfig, key: string, build: (rootfs: string) => void): string {
  const safe = config.name.replace(/[^a-zA-Z0-9.-]+/g, "_");
  const archive = join(imagesDir, `${safe}-${sha256(key + JSON.stringify(config)).slice(0, 16)}.oci.tar`);
  if (existsSync(archive)) return archive;
  const rootfs = mkdtempSync(join(tmpdir(), "trellis-rootfs-"));
  try {
    build(rootfs);
    writeOciArchive(rootfs, config, archive);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  return archive;
}

/** The pause image (the pod sandbox's first process) as an OCI archive. */
export function pauseImageArchive(): string {
  const binary = pauseBinary();
  return cachedArchive({ name: PAUSE_IMAGE, entrypoint: ["/pause"] }, sha256File(binary), (rootfs) => {
    copyFileSync(binary, join(rootfs, "pause"));
    execFileSync("chmod", ["0755", join(rootfs, "pause")]);
  });
}

/** Paths of the shared libraries (and the loader) that `ldd` lists for a binary. */
function sharedLibraries(binary: string): string[] {
  const out = execFileSync("ldd", [binary], { encoding: "utf8" });
  const paths: string[] = [];
  for (const line of out.split("\n")) {
    const match = line.match(/(?:=>\s*)?(\/\S+)\s+\(0x/);
    if (match?.[1]) paths.push(match[1]);
  }
  return paths;
}

/**
 * A Node.js runtime image: the pinned Node (as /usr/bin/node) and its libraries, plus `files`
 * (path in the image → content). The entrypoint is node itself; pods pass the script as args.
 */
export function nodeRuntimeImageArchive(name: string, files: Record<string, string>): string {
  const node = realpathSync(ensureNode());
  const libraries = sharedLibraries(node);
  const key = [node, statSync(node).mtimeMs, ...libraries, JSON.stringify(files)].join("\n");
  const config: ImageConfig = { name, entrypoint: ["/usr/bin/node"], workingDir: "/app" };
  return cachedArchive(config, key, (rootfs) => {
    mkdirSync(join(rootfs, "usr/bin"), { recursive: true });
    copyFileSync(node, join(rootfs, "usr/bin/node"));
    for (const path of libraries) {
      mkdirSync(join(rootfs, dirname(path)), { recursive: true });
      copyFileSync(realpathSync(path), join(rootfs, path));
    }
    execFileSync("chmod", ["0755", join(rootfs, "usr/bin/node")]);
    for (const dir of ["etc", "tmp", "app"]) mkdirSync(join(rootfs, dir), { recursive: true });
    execFileSync("chmod", ["1777", join(rootfs, "tmp")]);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(rootfs, dirname(path)), { recursive: true });
      writeFileSync(join(rootfs, path), content);
    }
  });
}
