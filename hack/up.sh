#!/usr/bin/env bash
# The run command: set-up, then the local cluster with Trellis on it (see hack/up.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh --up
exec node --import tsx hack/up.ts "$@"
