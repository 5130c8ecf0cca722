#!/usr/bin/env bash
# Installs what both commands need on a fresh machine, each step skipped when already done:
# npm packages (from the lock file), the pinned Node runtime (hack/node-runtime.json, from the
# npm registry), Debian packages, and the local cluster's binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== npm ci"
  npm ci --no-audit --no-fund
fi
# From here on (and in hack/test.sh, hack/up.sh) everything runs on the pinned Node.
source hack/node-env.sh

bash hack/install-debian-packages.sh
# The kubelet runs the local cluster's optional real node (test/cluster/real-node.ts).
TRELLIS_K8S_EXTRA=kubelet bash hack/build-cluster-binaries.sh >/dev/null
bash hack/build-argocd.sh >/dev/null
bash hack/build-olm.sh >/dev/null
