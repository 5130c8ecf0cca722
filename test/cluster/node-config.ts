// The real node's configuration files: containerd's config.toml (with the base runtime spec and
// the runc wrapper the sandbox needs), the kubelet's certificates, kubeconfig and
// KubeletConfiguration, and where each lives under the cluster dir.
//
// Pure file writing: starting the processes is real-node.ts's job. HARNESS.md ("A real node
// beside the KWOK nodes") explains each workaround for this sandbox.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import {
  type ClusterPki,
  issueClientCertificate,
  issueServingCertificate,
  writeKubeconfig,
} from "./cluster-pki.ts";
import { PAUSE_IMAGE } from "./node-images.ts";
import { type NodeNetwork, writeCniConfig } from "./node-network.ts";
import type { ProcessGroup } from "./process-group.ts";

export const REAL_NODE_NAME = "trellis-real-node";
export const REAL_NODE_LABEL = "trellis.dev/real-node";
/** Only pods that tolerate this taint run on the real node; everything at scale stays on KWOK. */
export const REAL_NODE_TAINT = { key: REAL_NODE_LABEL, value: "true", effect: "NoSchedule" } as const;
export const CLUSTER_DOMAIN = "cluster.local";

export interface RealNodeContext {
  clusterDir: string;
  pki: ClusterPki;
  group: ProcessGroup;
  kubeConfig: KubeConfig;
  server: string;
  apiServerPort: number;
  /** The kubelet's HTTPS port on the gateway address (logs, exec). */
  kubeletPort: number;
  kubelet: string;
  /** CoreDNS, the node's DNS server (cluster-dns.ts). */
  coredns: string;
  /** The admin kubeconfig CoreDNS reads the cluster with. */
  kubeconfigPath: string;
  /** CoreDNS's ready plugin port on 127.0.0.1. */
  dnsReadyPort: number;
  network: NodeNetwork;
  serviceCidr: string;
  /** The `kubernetes` Service's ClusterIP, redirected inside each pod to the forwarder. */
  kubernetesServiceIp: string;
  log: (msg: string) => void;
}

export function nodeDir(clusterDir: string): string {
  return join(clusterDir, "node");
}

export function containerdSocket(clusterDir: string): string {
  return join(nodeDir(clusterDir), "containerd", "containerd.sock");
}

/** containerd's config: everything under the node dir, CRI with the local pause image and our CNI. */
export function writeContainerdConfig(dir: string, ctx: RealNodeContext): string {
  const base = join(dir, "containerd");
  mkdirSync(base, { recursive: true });
  // The sandbox refuses RLIMIT_NOFILE: the default spec without process.rlimits.
  const spec = JSON.parse(execFileSync("ctr", ["oci", "spec"], { encoding: "utf8" }));
  delete spec.process.rlimits;
  writeFileSync(join(base, "base-spec.json"), JSON.stringify(spec));
  // The sandbox refuses a negative oom_score_adj (runc then fails with "can't get final child's
  // PID from pipe"): rewrite it to 0 in the bundle before runc reads it.
  const wrapper = join(base, "runc-wrapper");
  writeFileSync(
    wrapper,
    `#!/bin/sh
bundle=""
prev=""
for arg in "$@"; do
  case "$prev" in --bundle|-b) bundle="$arg" ;; esac
  case "$arg" in --bundle=*) bundle="\${arg#--bundle=}" ;; esac
  prev="$arg"
done
if [ -n "$bundle" ] && [ -f "$bundle/config.json" ]; then
  sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
fi
exec /usr/sbin/runc "$@"
`,
  );
  chmodSync(wrapper, 0o755);
  const cni = writeCniConfig(join(dir, "cni"), ctx.network, {
    clusterIp: ctx.kubernetesServiceIp,
    serviceCidr: ctx.serviceCidr,
    port: ctx.apiServerPort,
  });
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const config = `version = 2
root = "${join(base, "root")}"
state = "${join(base, "state")}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "${containerdSocket(ctx.clusterDir)}"

[ttrpc]
  address = "${containerdSocket(ctx.clusterDir)}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "${join(base, "opt")}"

[${cri}]
  sandbox_image = "${PAUSE_IMAGE}"
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  enable_selinux = false

[${cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[${cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "${join(base, "base-spec.json")}"

[${cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "${wrapper}"

[${cri}.cni]
  bin_dir = "${cni.binDir}"
  conf_dir = "${cni.confDir}"
  max_conf_num = 1
`;
  const path = join(base, "config.toml");
  writeFileSync(path, config);
  return path;
}

/** The kubelet's certificates, kubeconfig and KubeletConfiguration (HARNESS.md lists why each field). */
export function writeKubeletConfig(dir: string, ctx: RealNodeContext, socket: string): string {
  const base = join(dir, "kubelet");
  mkdirSync(join(base, "pod-logs"), { recursive: true });
  const client = issueClientCertificate(ctx.pki.dir, "kubelet-client", `system:node:${REAL_NODE_NAME}`, [
    "system:nodes",
  ]);
  const serving = issueServingCertificate(ctx.pki.dir, "kubelet-serving", {
    dnsNames: [REAL_NODE_NAME],
    ipAddresses: [ctx.network.gatewayIp],
  });
  writeKubeconfig(join(base, "kubeconfig"), ctx.server, ctx.pki.caCert, {
    name: `system:node:${REAL_NODE_NAME}`,
    certPath: client.cert,
    keyPath: client.key,
  });
  const config = {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    cgroupsPerQOS: false,
    enforceNodeAllocatable: [],
    failSwapOn: false,
    localStorageCapacityIsolation: false,
    containerRuntimeEndpoint: `unix://${socket}`,
    imageServiceEndpoint: `unix://${socket}`,
    podCIDR: ctx.network.podCidr,
    address: ctx.network.gatewayIp,
    port: ctx.kubeletPort,
    healthzPort: 0,
    readOnlyPort: 0,
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: ctx.pki.caCert },
    },
    authorization: { mode: "AlwaysAllow" },
    staticPodPath: "",
    resolvConf: "",
    clusterDNS: [ctx.network.gatewayIp],
    clusterDomain: CLUSTER_DOMAIN,
    podLogsDir: join(base, "pod-logs"),
    volumePluginDir: join(base, "volume-plugins"),
    registerWithTaints: [REAL_NODE_TAINT],
    makeIPTablesUtilChains: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { "memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%" },
    serializeImagePulls: false,
    maxPods: 30,
    // Pods' ConfigMap and Secret volumes are refreshed on each pod sync; a real cluster's 1m
    // makes every trust-bundle change in a test wait a minute.
    syncFrequency: "10s",
  };
  const path = join(base, "config.yaml");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}
