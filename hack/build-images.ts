// `npm run images`: builds the images a Mesh and the OLM bundle refer to, without a Docker
// engine: the operator, the control plane (one image, the component is its first argument),
// trellis-init (installs a meshed pod's capture rules), trellis-cni (the CNI plugin's node
// installer and the pods' validator) and the proxy, plus on request a
// never-ready proxy for rollback tests. Bundles the programs
// (hack/bundle.ts), assembles the root filesystems (hack/image-rootfs.ts), writes each image as
// an OCI archive (hack/oci-image.ts) under ~/.cache/trellis/images/<version>/, and prints name,
// reference, digest and sizes. References come from api/image-references.ts only.
//
// Usage: npm run images -- [--version 0.1.0] [--proxy-version 0.1.1] [--broken-proxy 0.1.2-broken]
//          [--registry localhost/trellis] [--out dir] [--revision sha] [--source url] [--no-strip]
//          [--import <containerd socket>]
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_IMAGE_REGISTRY, imageTag, releaseImageReferences } from "../api/image-references.ts";
import { PROXY_UID } from "../controlplane/injector/inject.ts";
import { operatorNodeEnvironment, operatorNodeFlags } from "../operator/runtime-flags.ts";
import pkg from "../package.json" with { type: "json" };
import { proxyNodeEnvironment, proxyNodeFlags } from "../proxy/runtime-flags.ts";
import { bundle, NATIVE_ADDON } from "./bundle.ts";
import { addCniTools } from "./cni-image.ts";
import { importIntoContainerd } from "./containerd-import.ts";
import {
  assembleApp,
  assembleCaptureTools,
  assembleRuntime,
  fileCapabilities,
  INIT_EXEC,
  NONROOT_UID,
  type RuntimeComponent,
} from "./image-rootfs.ts";
import { ensureNode } from "./node-runtime.ts";
import { type ImageConfig, type Layer, layerOf, ociArchive, ociImage, sourceDateEpoch } from "./oci-image.ts";
import { entriesOfDir } from "./tar-archive.ts";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");

/** Node flags and variables of the proxy image: the ones the proxy benchmark measured (proxy/runtime-flags.ts). */
export const PROXY_NODE_FLAGS: readonly string[] = proxyNodeFlags;
/** Node flags of the operator image (operator/runtime-flags.ts). */
export const OPERATOR_NODE_FLAGS: readonly string[] = operatorNodeFlags;
const PROXY_NODE_ENV = Object.entries(proxyNodeEnvironment).map(([k, v]) => `${k}=${v}`);
const OPERATOR_NODE_ENV = Object.entries(operatorNodeEnvironment).map(([k, v]) => `${k}=${v}`);

export interface BuildOptions {
  version: string;
  proxyVersion: string;
  /** Also build a never-ready proxy tagged with this version (a test image). */
  brokenProxy?: string;
  registry: string;
  out: string;
  epoch: number;
  revision: string;
  source?: string;
  strip: boolean;
  /** The Node binary the images carry: the pinned runtime (hack/node-runtime.json) by default. */
  node: string;
}

export interface BuiltImage {
  name: string;
  reference: string;
  digest: string;
  archive: string;
  /** Bytes of the archive: the compressed layers plus config and manifest. */
  archiveBytes: number;
  /** Bytes of the unpacked root filesystem (the layers' tar streams). */
  unpackedBytes: number;
  /** The folders whose union is the image's root filesystem, lowest layer first. */
  rootfs: string[];
}

interface ImageDefinition {
  name: string;
  repositoryRef: string;
  title: string;
  description: string;
  program: { file: string; as: string; packages: string; beside?: { file: string; as: string }[] };
  config: Omit<ImageConfig, "Labels">;
  testImage?: string;
  /** A layer between the runtime and the app: trellis-init's capture tools. */
  tools?: boolean;
  /** Adds files to the assembled app folder; returns the Debian packages it added. */
  addFiles?: (appDir: string, below: RuntimeComponent[]) => RuntimeComponent[];
}

/** CAP_NET_ADMIN and CAP_NET_RAW (linux/capability.h): what trellis-init needs, nothing else. */
const CAPTURE_CAPABILITIES = [12, 13];

/**
 * trellis-init runs as a non-root user. Its entrypoint (capture/native/init-exec.c) carries
 * NET_ADMIN and NET_RAW as file capabilities (permitted), raises them into the inheritable and
 * ambient sets and starts Node, so Node and the iptables it runs hold them. This works with
 * no_new_privs (allowPrivilegeEscalation: false) because the container's own permitted set (from
 * securityContext.capabilities.add) contains them; where they were not added it says why.
 */
export const INIT_ENTRYPOINT: readonly string[] = [INIT_EXEC];

export function defaultOptions(overrides: Partial<BuildOptions> = {}): BuildOptions {
  const version = overrides.version ?? pkg.version;
  const git = (...args: string[]) => spawnSync("git", args, { cwd: root, encoding: "utf8" });
  const origin = git("remote", "get-url", "origin");
  return {
    version,
    proxyVersion: version,
    registry: DEFAULT_IMAGE_REGISTRY,
    out: join(homedir(), ".cache/trellis/images", version),
    epoch: sourceDateEpoch(),
    revision: git("rev-parse", "HEAD").stdout.trim() || "unknown",
    ...(origin.status === 0 && origin.stdout.trim() ? { source: origin.stdout.trim() } : {}),
    strip: spawnSync("strip", ["--version"]).status === 0,
    node: ensureNode(),
    ...overrides,
  };
}

const env = (name: string, version: string) => ["PATH=/usr/bin", `${name}=${version}`];

function definitions(o: BuildOptions, dist: string): ImageDefinition[] {
  const refs = releaseImageReferences(o.registry, o.version, o.proxyVersion);
  const program = (name: string, file = `${name}.mjs`) => ({
    file: join(dist, file),
    as: file,
    packages: join(dist, `${name}.packages.json`),
  });
  const nonroot = `${NONROOT_UID}:${NONROOT_UID}`;
  const node = "/usr/bin/node";
  const defs: ImageDefinition[] = [
    {
      name: "operator",
      repositoryRef: refs.operator,
      title: "trellis-operator",
      description: "The Trellis operator: installs, upgrades and secures the mesh.",
      program: program("trellis"),
      config: {
        User: nonroot,
        Entrypoint: [node, ...OPERATOR_NODE_FLAGS, "/app/trellis.mjs"],
        Cmd: ["operator"],
        Env: [...env("TRELLIS_OPERATOR_VERSION", o.version), ...OPERATOR_NODE_ENV],
        WorkingDir: "/app",
      },
    },
    {
      name: "controlplane",
      repositoryRef: refs.controlPlane,
      title: "trellis-controlplane",
      description:
        "The Trellis control plane: injector, identity or destination, named by the first argument.",
      program: program("controlplane"),
      config: {
        User: nonroot,
        Entrypoint: [node, "/app/controlplane.mjs"],
        Env: env("TRELLIS_CONTROL_PLANE_VERSION", o.version),
        WorkingDir: "/app",
      },
    },
    {
      name: "init",
      repositoryRef: refs.init,
      title: "trellis-init",
      description:
        "Installs a meshed pod's traffic capture rules (iptables) in its network namespace, then exits.",
      program: program("trellis-init"),
      config: {
        User: nonroot,
        Entrypoint: [...INIT_ENTRYPOINT],
        Env: ["PATH=/usr/sbin:/usr/bin", `TRELLIS_INIT_VERSION=${o.version}`],
        WorkingDir: "/app",
      },
      tools: true,
    },
    {
      name: "cni",
      repositoryRef: refs.cni,
      title: "trellis-cni",
      description:
        "The Trellis CNI plugin: its node installer (DaemonSet), the plugin itself and the meshed pods' validator.",
      program: program("trellis-cni"),
      config: {
        User: nonroot,
        Entrypoint: [node, "/app/trellis-cni.mjs"],
        Cmd: ["install"],
        Env: ["PATH=/usr/sbin:/usr/bin", `TRELLIS_CNI_VERSION=${o.version}`],
        WorkingDir: "/app",
      },
      tools: true,
      addFiles: addCniTools,
    },
    {
      name: "proxy",
      repositoryRef: refs.proxy,
      title: "trellis-proxy",
      description: "The Trellis sidecar proxy.",
      // The native addon capture mode reads SO_ORIGINAL_DST with (proxy/original-destination.ts).
      program: { ...program("proxy"), beside: [{ file: join(dist, NATIVE_ADDON), as: NATIVE_ADDON }] },
      config: {
        User: `${PROXY_UID}:${PROXY_UID}`,
        Entrypoint: [node, ...PROXY_NODE_FLAGS, "/app/proxy.mjs"],
        Env: [...env("TRELLIS_PROXY_VERSION", o.proxyVersion), ...PROXY_NODE_ENV],
        WorkingDir: "/app",
      },
    },
  ];
  if (o.brokenProxy) {
    defs.push({
      name: "proxy-never-ready",
      repositoryRef: releaseImageReferences(o.registry, o.version, o.brokenProxy).proxy,
      title: "trellis-proxy-never-ready (TEST IMAGE)",
      description:
        "TEST IMAGE, do not deploy: a proxy whose /ready always answers 503, for canary rollback tests.",
      program: { file: join(root, "hack/never-ready-proxy.mjs"), as: "never-ready-proxy.mjs", packages: "" },
      config: {
        User: `${PROXY_UID}:${PROXY_UID}`,
        Entrypoint: [node, "/app/never-ready-proxy.mjs"],
        Env: env("TRELLIS_PROXY_VERSION", o.brokenProxy),
        WorkingDir: "/app",
      },
      testImage: "never-ready proxy: /live 200, /ready 503; for rollback tests only",
    });
  }
  return defs;
}

function labels(o: BuildOptions, d: ImageDefinition): Record<string, string> {
  const version = d.config.Env.find((e) => e.includes("_VERSION="))!.split("=")[1]!;
  return {
    "org.opencontainers.image.description": d.description,
    "org.opencontainers.image.licenses": pkg.license,
    "org.opencontainers.image.revision": o.revision,
    ...(o.source ? { "org.opencontainers.image.source": o.source } : {}),
    "org.opencontainers.image.title": d.title,
    "org.opencontainers.image.version": version,
    ...(d.testImage ? { "dev.trellis.test-image": d.testImage } : {}),
  };
}

export async function buildImages(
  o: BuildOptions,
): Promise<{ images: BuiltImage[]; runtime: RuntimeComponent[] }> {
  const dist = join(o.out, "dist");
  await bundle(dist);
  const runtimeDir = join(o.out, "rootfs/runtime");
  const runtime = assembleRuntime(runtimeDir, { node: o.node, strip: o.strip }, PROXY_UID);
  const node = runtime.find((c) => c.name === "node")!;
  const runtimeLayer = layerOf(
    entriesOfDir(runtimeDir),
    o.epoch,
    `node ${node.version} and the libraries it links`,
  );
  const toolsDir = join(o.out, "rootfs/capture-tools");
  const tools = assembleCaptureTools(toolsDir, runtime);
  const toolsLayer = layerOf(
    entriesOfDir(toolsDir).map((e) =>
      e.type === "file" && `/${e.path}` === INIT_EXEC
        ? { ...e, xattrs: { "security.capability": fileCapabilities(CAPTURE_CAPABILITIES) } }
        : e,
    ),
    o.epoch,
    `iptables ${tools.find((c) => c.name === "iptables")?.version} from Debian's packages, and the entrypoint`,
  );
  const images: BuiltImage[] = [];
  for (const d of definitions(o, dist)) {
    const appDir = join(o.out, "rootfs", d.name);
    const packages = d.program.packages || join(o.out, "no-packages.json");
    if (!d.program.packages) writeFileSync(packages, "[]\n");
    assembleApp(appDir, d.program, packages);
    d.addFiles?.(appDir, d.tools ? [...runtime, ...tools] : runtime);
    const appLayer: Layer = layerOf(entriesOfDir(appDir), o.epoch, `/app/${d.program.as}, bundled`);
    const image = ociImage({
      reference: d.repositoryRef,
      epoch: o.epoch,
      layers: d.tools ? [runtimeLayer, toolsLayer, appLayer] : [runtimeLayer, appLayer],
      config: { ...d.config, Labels: labels(o, d) },
    });
    const tag = d.repositoryRef.slice(d.repositoryRef.lastIndexOf(":") + 1);
    const archive = join(o.out, `${d.name}-${tag}.oci.tar`);
    const bytes = ociArchive(image, o.epoch);
    writeFileSync(archive, bytes);
    images.push({
      name: d.name,
      reference: d.repositoryRef,
      digest: image.digest,
      archive,
      archiveBytes: bytes.length,
      unpackedBytes:
        runtimeLayer.uncompressedSize +
        (d.tools ? toolsLayer.uncompressedSize : 0) +
        appLayer.uncompressedSize,
      rootfs: d.tools ? [runtimeDir, toolsDir, appDir] : [runtimeDir, appDir],
    });
  }
  writeFileSync(join(o.out, "images.json"), `${JSON.stringify({ images, runtime, tools }, null, 2)}\n`);
  return { images, runtime };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      version: { type: "string" },
      "proxy-version": { type: "string" },
      "broken-proxy": { type: "string" },
      registry: { type: "string" },
      out: { type: "string" },
      revision: { type: "string" },
      source: { type: "string" },
      "no-strip": { type: "boolean" },
      import: { type: "string" },
    },
  });
  const version = values.version ?? pkg.version;
  const o = defaultOptions({
    version,
    proxyVersion: values["proxy-version"] ?? version,
    ...(values["broken-proxy"] ? { brokenProxy: values["broken-proxy"] } : {}),
    ...(values.registry ? { registry: values.registry } : {}),
    ...(values.out ? { out: resolve(values.out) } : {}),
    ...(values.revision ? { revision: values.revision } : {}),
    ...(values.source ? { source: values.source } : {}),
    ...(values["no-strip"] ? { strip: false } : {}),
  });
  mkdirSync(o.out, { recursive: true });
  const started = Date.now();
  const { images } = await buildImages(o);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  for (const i of images)
    process.stdout.write(
      `${i.name.padEnd(18)} ${i.reference.padEnd(44)} ${i.digest}  ${mb(i.archiveBytes)} (unpacked ${mb(i.unpackedBytes)})  ${i.archive}\n`,
    );
  process.stdout.write(`built in ${seconds} s; tag ${imageTag(o.version)}, revision ${o.revision}\n`);
  if (values.import) importIntoContainerd(values.import, images);
}
