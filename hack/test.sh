#!/usr/bin/env bash
# The whole test suite: set-up (npm packages, Node, Debian packages, Kubernetes binaries), lint,
# type check, then every *.test.ts under the source folders with Node's test runner.
# Usage: hack/test.sh [file-or-folder ...]   (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."

bash hack/setup.sh
# Everything below runs on the pinned Node, not the machine's (hack/node-env.sh).
source hack/node-env.sh
echo "== node $(node --version) ($(command -v node))"

echo "== lint and format (biome)"
npx biome ci --colors=off --reporter=summary .
echo "== type check (tsc)"
npx tsc --noEmit -p .

roots=("$@")
[ ${#roots[@]} -gt 0 ] || roots=(api capture cni pki kube operator controlplane proxy cli test bench hack)
mapfile -t files < <(find "${roots[@]}" -name '*.test.ts' -not -path '*/node_modules/*' 2>/dev/null | sort)
[ ${#files[@]} -gt 0 ] || { echo "no test files under: ${roots[*]}" >&2; exit 1; }
echo "== ${#files[@]} test files"
exec node --import tsx --test --test-reporter=spec --test-concurrency="${TRELLIS_TEST_CONCURRENCY:-1}" "${files[@]}"
