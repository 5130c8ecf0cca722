// Builds the trellis-cni launcher (cni/launcher/main.go): a static Go program, built once per
// source into ~/.cache/trellis/cni-launcher/<hash>/ (deterministic: -trimpath, no build id, no
// VCS stamp). The cni image carries it as /app/trellis-cni-launcher; tests use it directly.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

const source = new URL("../cni/launcher/main.go", import.meta.url);

/** Path of the launcher binary built from the current source. */
export function cniLauncher(): string {
  const text = readFileSync(source, "utf8");
  const dir = join(
    homedir(),
    ".cache/trellis/cni-launcher",
    createHash("sha256").update(text).digest("hex").slice(0, 12),
  );
  const binary = join(dir, "trellis-cni");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "main.go"), text);
  writeFileSync(join(dir, "go.mod"), "module trellis.dev/cni-launcher\n\ngo 1.21\n");
  execFileSync(
    "go",
    ["build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w -buildid=", "-o", `${binary}.tmp`, "."],
    {
      cwd: dir,
      env: { ...process.env, CGO_ENABLED: "0", GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  renameSync(`${binary}.tmp`, binary);
  return binary;
}
