#!/usr/bin/env bash
# Runs the pinned Node (hack/node-runtime.json) with the given arguments, from the repository's
# root, installing it first when the cache lacks it; for benchmarks and one-off commands:
#   bash hack/node.sh --import tsx bench/pki-issue.bench.ts
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f node_modules/.package-lock.json ] || npm ci --no-audit --no-fund >&2
# shellcheck source=hack/node-env.sh
source hack/node-env.sh
exec node "$@"
