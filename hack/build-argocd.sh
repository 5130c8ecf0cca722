#!/usr/bin/env bash
# Builds Argo CD's repo-server and application-controller from Go modules, through the Go module
# proxy, into a cache outside the repository, for the GitOps tests in test/argocd/. Nothing is
# downloaded but Go modules (and the Go toolchain Argo CD needs, which the proxy serves as one).
# Rebuilt only when missing. Prints the cache folder on its last line; its layout:
#   argocd                          the multi-call binary (github.com/argoproj/argo-cd/v3/cmd)
#   argocd-repo-server, argocd-application-controller   symlinks to it (it dispatches on argv[0])
#   crds/                           Application and AppProject CRDs from the module
#   bin/                            git-verify-wrapper.sh and git-ask-pass.sh, for repo-server's PATH
#   argocd-health                   Argo CD's Lua VM over a health.lua (hack/argocd-health/main.go)
#
# Only this build uses Go 1.27 (Argo CD v3.6 requires it); the rest of the project stays on the
# machine's Go.
#
#   TRELLIS_CACHE        cache root (default ~/.cache/trellis)
#   ARGOCD_VERSION       Argo CD release, e.g. v3.6.1
#   ARGOCD_GOTOOLCHAIN   Go toolchain for this build (default go1.27.3)
set -euo pipefail

ARGOCD_VERSION=${ARGOCD_VERSION:-v3.6.1}
CACHE=${TRELLIS_CACHE:-$HOME/.cache/trellis}
OUT_DIR=$CACHE/argocd-$ARGOCD_VERSION
MOD_DIR=$CACHE/build/argocd-$ARGOCD_VERSION
export GOTOOLCHAIN=${ARGOCD_GOTOOLCHAIN:-go1.27.3}

say() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "go is required" >&2; exit 1; }

if [ ! -x "$OUT_DIR/argocd" ] || [ ! -f "$OUT_DIR/crds/application-crd.yaml" ]; then
  mkdir -p "$MOD_DIR" "$OUT_DIR"
  if [ ! -f "$MOD_DIR/go.sum" ] || ! grep -q "argo-cd/v3 $ARGOCD_VERSION" "$MOD_DIR/go.mod"; then
    say "downloading github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION with $GOTOOLCHAIN"
    src=$(cd "$MOD_DIR" && GOFLAGS=-mod=mod go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$src" ] || { echo "argo-cd module not found in the module cache" >&2; exit 1; }
    # Our module requires argo-cd and its gitops-engine at the same tag, and copies argo-cd's
    # replace directives (a dependency's replaces do not apply to us) except the one that points
    # gitops-engine at a folder of their repository.
    {
      echo "module trellis.dev/hack/argocdbuild"
      echo
      echo "go $(sed -n 's/^go \(.*\)$/\1/p' "$src/go.mod")"
      echo
      echo "require ("
      echo "	github.com/argoproj/argo-cd/v3 $ARGOCD_VERSION"
      echo "	github.com/argoproj/argo-cd/gitops-engine/v3 $ARGOCD_VERSION"
      echo ")"
      echo
      sed -n '/^replace ($/,/^)$/p' "$src/go.mod"
    } >"$MOD_DIR/go.mod"
    cat >"$MOD_DIR/tools.go" <<'EOF'
//go:build tools

package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
EOF
    say "go mod tidy (downloads modules through the Go module proxy; a minute or two cold)"
    (cd "$MOD_DIR" && go mod tidy)
  fi
  src=$(cd "$MOD_DIR" && go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)
  say "building argocd $ARGOCD_VERSION (about 10 min cold on 2 cores)"
  start=$(date +%s)
  ldflags="-s -w -X github.com/argoproj/argo-cd/v3/common.version=${ARGOCD_VERSION#v}"
  (cd "$MOD_DIR" && CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$OUT_DIR/argocd" github.com/argoproj/argo-cd/v3/cmd)
  say "built in $(($(date +%s) - start)) s"
  mkdir -p "$OUT_DIR/crds" "$OUT_DIR/bin"
  cp "$src/manifests/crds/application-crd.yaml" "$src/manifests/crds/appproject-crd.yaml" "$OUT_DIR/crds/"
  cp "$src/hack/git-verify-wrapper.sh" "$src/hack/git-ask-pass.sh" "$OUT_DIR/bin/"
  chmod u+w,+x "$OUT_DIR/bin/"*.sh
  chmod u+w "$OUT_DIR/crds/"*.yaml
  ln -sf argocd "$OUT_DIR/argocd-repo-server"
  ln -sf argocd "$OUT_DIR/argocd-application-controller"
fi

# argocd-health: Argo CD's own Lua VM (util/lua, gopher-lua) over a health.lua, for
# test/argocd/health-lua.test.ts; rebuilt when its source changes (about 25 s with Argo CD built).
health_src=$(cd "$(dirname "$0")" && pwd)/argocd-health/main.go
if [ ! -x "$OUT_DIR/argocd-health" ] || ! cmp -s "$health_src" "$MOD_DIR/health/main.go"; then
  mkdir -p "$MOD_DIR/health"
  cp "$health_src" "$MOD_DIR/health/main.go"
  say "building argocd-health (Argo CD's Lua VM)"
  (cd "$MOD_DIR" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$OUT_DIR/argocd-health" ./health)
fi

say "ready: argocd $ARGOCD_VERSION in $OUT_DIR"
echo "$OUT_DIR"
