#!/usr/bin/env bash
# The run command: set-up, then the local cluster with Trellis on it (see hack/up.ts), on the
# pinned Node (hack/node-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh --up
source hack/node-env.sh
exec node --import tsx hack/up.ts "$@"
