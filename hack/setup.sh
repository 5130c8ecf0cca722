#!/usr/bin/env bash
# Installs what both commands need on a fresh machine, each step skipped when already done:
# npm packages (from the lock file), the pinned Node runtime (hack/node-runtime.json, from the
# npm registry), Debian packages, and the local cluster's binaries.
# Usage: hack/setup.sh [--up]   --up: only what `npm run up` runs (no Argo CD, no OLM tools, no
# krew, which only the tests use: about 10 of the 18 minutes of a cold set-up).
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
# The real node's DNS server (test/cluster/cluster-dns.ts).
bash hack/build-coredns.sh >/dev/null
[ "${1:-}" = --up ] && exit 0
# For the tests only (test/argocd, test/olm, the krew manifest's). The builds do not depend on
# each other, but each keeps both cores busy (go build compiles packages in parallel), so
# running them at once would save nothing.
bash hack/build-argocd.sh >/dev/null
bash hack/build-olm.sh >/dev/null
bash hack/build-krew.sh >/dev/null   # krew and its manifest validator (hack/bundle.test.ts), ~1 min cold
