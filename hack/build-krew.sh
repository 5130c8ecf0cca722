#!/usr/bin/env bash
# Builds krew (as kubectl-krew) and krew-index's manifest validator (validate-krew-manifest) from
# the sigs.k8s.io/krew Go module, through the Go module proxy, into a cache outside the
# repository, for the test of the kubectl plugin's krew manifest (hack/krew-manifest.test.ts).
# Rebuilt only when missing. Prints the cache folder on its last line.
#
#   TRELLIS_CACHE   cache root (default ~/.cache/trellis)
#   KREW_VERSION    sigs.k8s.io/krew release (v0.4.5 is not served by the proxy here)
set -euo pipefail

KREW_VERSION=${KREW_VERSION:-v0.4.4}
CACHE=${TRELLIS_CACHE:-$HOME/.cache/trellis}
OUT_DIR=$CACHE/krew-$KREW_VERSION
MOD_DIR=$CACHE/build/krew-$KREW_VERSION

say() { printf '[build-krew %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "go is required (Go 1.26+)" >&2; exit 1; }

if [ ! -x "$OUT_DIR/kubectl-krew" ] || [ ! -x "$OUT_DIR/validate-krew-manifest" ]; then
  mkdir -p "$MOD_DIR" "$OUT_DIR"
  if [ ! -f "$MOD_DIR/go.sum" ]; then
    printf 'module trellis.dev/hack/krewbuild\n\ngo 1.26\n\nrequire sigs.k8s.io/krew %s\n' "$KREW_VERSION" >"$MOD_DIR/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "sigs.k8s.io/krew/cmd/krew"\n\t_ "sigs.k8s.io/krew/cmd/validate-krew-manifest"\n)\n' >"$MOD_DIR/tools.go"
    say "go mod tidy for sigs.k8s.io/krew $KREW_VERSION (through the Go module proxy)"
    (cd "$MOD_DIR" && go mod tidy)
  fi
  say "building krew and validate-krew-manifest $KREW_VERSION (about 1 min cold)"
  # No version stamped: krew then skips its upgrade check (a request to GitHub).
  (cd "$MOD_DIR" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$OUT_DIR/kubectl-krew" sigs.k8s.io/krew/cmd/krew)
  (cd "$MOD_DIR" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$OUT_DIR/validate-krew-manifest" sigs.k8s.io/krew/cmd/validate-krew-manifest)
fi

say "ready: krew $KREW_VERSION in $OUT_DIR"
echo "$OUT_DIR"
