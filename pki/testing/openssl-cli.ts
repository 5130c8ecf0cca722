// Test support: runs the openssl CLI over temporary files, so pki output is judged by an
// implementation that shares no code with pki/. Not imported by the module itself.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface OpensslResult {
  ok: boolean;
  stdout: string;
  /** stdout and stderr together, for assertion messages. */
  output: string;
}

/** Writes `files` into a fresh temp dir, runs `openssl ...args` there, removes the dir. */
export function openssl(args: string[], files: Record<string, string | Buffer> = {}): OpensslResult {
  const dir = mkdtempSync(join(tmpdir(), "trellis-pki-"));
  try {
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const run = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    return { ok: run.status === 0, stdout: run.stdout, output: `${run.stdout}${run.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs openssl and returns stdout, throwing with its output when it fails. */
export function opensslOrThrow(args: string[], files: Record<string, string | Buffer> = {}): string {
  const result = openssl(args, files);
  if (!result.ok) throw new Error(`openssl ${args.join(" ")} failed:\n${result.output}`);
  return result.stdout;
}

/** `openssl verify` of `leafPem` against `anchorsPem`, with optional untrusted intermediates and time. */
export function opensslVerify(o: { leafPem: string; anchorsPem: string; untrustedPem?: string; at?: Date }) {
  const args = ["verify", "-CAfile", "anchors.pem"];
  const files: Record<string, string> = { "anchors.pem": o.anchorsPem, "leaf.pem": o.leafPem };
  if (o.untrustedPem !== undefined) {
    args.push("-untrusted", "untrusted.pem");
    files["untrusted.pem"] = o.untrustedPem;
  }
  if (o.at !== undefined) args.push("-attime", String(Math.floor(o.at.getTime() / 1000)));
  args.push("leaf.pem");
  return openssl(args, files);
}
