// The kubectl plugin as krew ships it: an archive holding the one-file program kubectl-trellis,
// and the plugin manifest rendered from the repository's krew-release-bot template (.krew.yaml)
// with the archive's URI and sha256 — the same template the release bot fills in. Deterministic:
// the archive is a function of the program's bytes (tar-archive.ts; gzip without a timestamp).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { tarArchive } from "./tar-archive.ts";

const root = resolve(dirname(new URL(import.meta.url).pathname), "..");
export const PLUGIN_BINARY = "kubectl-trellis";
export const PLUGIN_ARCHIVE = "kubectl-trellis.tar.gz";

/** Krew installs a plugin only with its licence beside it; the project's is named in package.json. */
function licenseText(): string {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { license: string };
  return `kubectl-trellis is part of Trellis and is licensed under the ${pkg.license} licence\n(SPDX-License-Identifier: ${pkg.license}; https://spdx.org/licenses/${pkg.license}.html).\n`;
}

/** The archive krew downloads: kubectl-trellis, executable, and LICENSE, at its root. */
export function pluginArchive(program: Buffer): Buffer {
  return gzipSync(
    tarArchive([
      { type: "file", path: "LICENSE", mode: 0o644, data: Buffer.from(licenseText()) },
      { type: "file", path: PLUGIN_BINARY, mode: 0o755, data: program },
    ]),
    { level: 9 },
  );
}

/** .krew.yaml with the tag, and the archive's URI and sha256 where the bot's addURIAndSha stands. */
export function renderKrewManifest(tag: string, archive: Buffer, uri?: string): string {
  const template = readFileSync(join(root, ".krew.yaml"), "utf8");
  const sha256 = createHash("sha256").update(archive).digest("hex");
  return template
    .split("\n")
    .filter((l) => !l.startsWith("#"))
    .join("\n")
    .replace(/^(\s*)\{\{ addURIAndSha "([^"]+)" \.TagName \}\}$/m, (_m, indent: string, url: string) => {
      const at = uri ?? url.replaceAll("{{ .TagName }}", tag);
      return `${indent}uri: ${at}\n${indent}sha256: ${sha256}`;
    })
    .replaceAll("{{ .TagName }}", tag)
    .replace(/^\n+/, "");
}

/** krew (as kubectl-krew) and validate-krew-manifest, built by hack/build-krew.sh when missing. */
export function krewBinaries(): string {
  const out = execFileSync("bash", [join(root, "hack/build-krew.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out.trim().split("\n").at(-1) ?? "";
}
