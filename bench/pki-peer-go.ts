// Peer workload: Go crypto/x509 (the path Linkerd's identity service takes), built from
// bench/go-x509 into a temporary directory and run with GOMAXPROCS=1 once per measurement, so it
// shares the rounds — and the machine's noise — with the Node peers.

import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Workload } from "./pki-workloads.ts";

const SOURCE_DIR = fileURLToPath(new URL("./go-x509/", import.meta.url));

interface GoReport {
  perSecond: number;
  cpuPerWall: number;
  sampleDer: string;
  issuerDer: string;
}

export interface GoPeer {
  version: string;
  workloads: Workload[];
  cleanup(): void;
}

/** Builds the Go peer; returns the reason instead when Go is missing or the build fails. */
export function buildGoPeer(): GoPeer | string {
  const version = spawnSync("go", ["version"], { encoding: "utf8" });
  if (version.status !== 0) return "go is not installed";
  const dir = mkdtempSync(join(tmpdir(), "trellis-go-x509-"));
  const binary = join(dir, "go-x509");
  const build = spawnSync("go", ["build", "-o", binary, "."], { cwd: SOURCE_DIR, encoding: "utf8" });
  if (build.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return `go build failed: ${build.stderr.trim()}`;
  }
  const run = (mode: string, seconds: number): GoReport => {
    const args = ["-mode", mode, "-duration", `${seconds}s`];
    const env = { ...process.env, GOMAXPROCS: "1" };
    const result = spawnSync(binary, args, { encoding: "utf8", env, timeout: (seconds + 30) * 1000 });
    if (result.status !== 0) throw new Error(`go-x509 ${args.join(" ")} failed: ${result.stderr}`);
    return JSON.parse(result.stdout) as GoReport;
  };
  const workload = (work: "csr" | "keygen"): Workload => ({
    peer: "Go crypto/x509, GOMAXPROCS=1",
    work,
    sample: async () => {
      const report = run(work, 0.05);
      return {
        der: Buffer.from(report.sampleDer, "base64"),
        issuerDer: Buffer.from(report.issuerDer, "base64"),
      };
    },
    run: async (seconds) => {
      const report = run(work, seconds);
      return {
        perWallSecond: report.perSecond,
        perCpuSecond: report.perSecond / report.cpuPerWall,
        cpuPerWall: report.cpuPerWall,
      };
    },
  });
  return {
    version: version.stdout.trim(),
    workloads: [workload("csr"), workload("keygen")],
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
