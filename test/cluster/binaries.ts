// Where the local cluster's binaries are, building them (through hack/build-cluster-binaries.sh,
// from Go modules, cached under ~/.cache/trellis) when they are missing.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const K8S_VERSION = process.env.K8S_VERSION ?? "v1.36.3";
export const KWOK_VERSION = process.env.KWOK_VERSION ?? "v0.8.0";
export const COREDNS_VERSION = process.env.COREDNS_VERSION ?? "v1.15.0";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const cacheRoot = process.env.TRELLIS_CACHE ?? join(homedir(), ".cache", "trellis");

export interface ClusterBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubectl: string;
  kwok: string;
}

export function clusterBinaries(): ClusterBinaries {
  const k8s = join(cacheRoot, `k8s-${K8S_VERSION}`);
  const bins: ClusterBinaries = {
    etcd: join(k8s, "etcd"),
    kubeApiserver: join(k8s, "kube-apiserver"),
    kubeControllerManager: join(k8s, "kube-controller-manager"),
    kubeScheduler: join(k8s, "kube-scheduler"),
    kubectl: join(k8s, "kubectl"),
    kwok: join(cacheRoot, `kwok-${KWOK_VERSION}`, "kwok"),
  };
  if (Object.values(bins).some((p) => !existsSync(p))) {
    execFileSync("bash", [join(repoRoot, "hack/build-cluster-binaries.sh")], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, K8S_VERSION, KWOK_VERSION, TRELLIS_CACHE: cacheRoot },
    });
  }
  return bins;
}

/** CoreDNS (the real node's DNS server; hack/build-coredns.sh), built on first use. */
export function corednsBinary(): string {
  const coredns = join(cacheRoot, `coredns-${COREDNS_VERSION}`, "coredns");
  if (!existsSync(coredns)) {
    execFileSync("bash", [join(repoRoot, "hack/build-coredns.sh")], {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, COREDNS_VERSION, TRELLIS_CACHE: cacheRoot },
    });
  }
  return coredns;
}

/** The kubelet (for the real node), built on first use like the other binaries. */
export function kubeletBinary(): string {
  const kubelet = join(cacheRoot, `k8s-${K8S_VERSION}`, "kubelet");
  if (!existsSync(kubelet)) {
    execFileSync("bash", [join(repoRoot, "hack/build-cluster-binaries.sh")], {
      stdio: ["ignore", "ignore", "inherit"],
      env: {
        ...process.env,
        K8S_VERSION,
        KWOK_VERSION,
        TRELLIS_CACHE: cacheRoot,
        TRELLIS_K8S_EXTRA: "kubelet",
      },
    });
  }
  return kubelet;
}
