#!/usr/bin/env bash
# Builds the Operator Lifecycle Manager (olm, catalog), opm and our bundle validator
# (hack/olm-validate) from Go modules, through the Go module proxy, into a cache outside the
# repository. Nothing is downloaded but Go modules. Each binary is rebuilt only when missing;
# the validator also when its source changes. `go install pkg@version` does not work here (the
# proxy refuses version lists), so OLM and opm are required from small modules of ours.
# Prints the OLM, opm and validator folders and OLM's CRD folder (from the Go module cache) on
# its last four lines.
#
#   TRELLIS_CACHE      cache root (default ~/.cache/trellis)
#   OLM_VERSION        github.com/operator-framework/operator-lifecycle-manager release
#   OPM_VERSION        github.com/operator-framework/operator-registry release
set -euo pipefail
cd "$(dirname "$0")/.."

OLM_VERSION=${OLM_VERSION:-v0.38.0}
OPM_VERSION=${OPM_VERSION:-v1.60.0}
CACHE=${TRELLIS_CACHE:-$HOME/.cache/trellis}
OLM_DIR=$CACHE/olm-$OLM_VERSION
OPM_DIR=$CACHE/opm-$OPM_VERSION

say() { printf '[build-olm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "go is required (Go 1.26+)" >&2; exit 1; }

# write_module DIR MODULE REQUIRE IMPORTS...: a go.mod requiring one module and a tools.go
# importing the commands to build; tidied only when the pair changes.
write_module() {
  local dir=$1 module=$2 require=$3
  shift 3
  local tmp
  tmp=$(mktemp -d)
  printf 'module %s\n\ngo 1.26\n\nrequire %s\n' "$module" "$require" >"$tmp/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for i in "$@"; do printf '\t_ "%s"\n' "$i"; done
    printf ')\n'
  } >"$tmp/tools.go"
  mkdir -p "$dir"
  if [ ! -f "$dir/go.sum" ] || ! cmp -s "$tmp/tools.go" "$dir/tools.go"; then
    say "writing build module $module ($require); go mod tidy through the Go module proxy"
    cp "$tmp/go.mod" "$tmp/tools.go" "$dir/"
    (cd "$dir" && go mod tidy)
  fi
  rm -rf "$tmp"
}

if [ ! -x "$OLM_DIR/olm" ] || [ ! -x "$OLM_DIR/catalog" ]; then
  mod=$CACHE/build/olm-$OLM_VERSION
  olm=github.com/operator-framework/operator-lifecycle-manager
  write_module "$mod" trellis.dev/hack/olmbuild "$olm $OLM_VERSION" "$olm/cmd/olm" "$olm/cmd/catalog"
  say "building olm and catalog $OLM_VERSION (about 10 min cold on 2 busy cores)"
  start=$(date +%s)
  mkdir -p "$OLM_DIR"
  (cd "$mod" && CGO_ENABLED=0 go build -ldflags "-s -w -X $olm/pkg/version.OLMVersion=${OLM_VERSION#v}" \
    -o "$OLM_DIR/" "$olm/cmd/olm" "$olm/cmd/catalog")
  say "built olm and catalog in $(($(date +%s) - start)) s"
fi

if [ ! -x "$OPM_DIR/opm" ]; then
  mod=$CACHE/build/opm-$OPM_VERSION
  reg=github.com/operator-framework/operator-registry
  write_module "$mod" trellis.dev/hack/opmbuild "$reg $OPM_VERSION" "$reg/cmd/opm"
  say "building opm $OPM_VERSION (about 3 min cold on 2 idle cores, 18 min on busy ones)"
  start=$(date +%s)
  mkdir -p "$OPM_DIR"
  (cd "$mod" && CGO_ENABLED=1 go build -tags json1,containers_image_openpgp \
    -ldflags "-s -w -X $reg/cmd/opm/version.opmVersion=$OPM_VERSION" \
    -o "$OPM_DIR/opm" "$reg/cmd/opm")
  say "built opm in $(($(date +%s) - start)) s"
fi

# The validator is ours: rebuilt when hack/olm-validate changes (the folder name carries a hash).
src_hash=$(cat hack/olm-validate/go.mod hack/olm-validate/go.sum hack/olm-validate/*.go | sha256sum | cut -c1-12)
VALIDATE_DIR=$CACHE/olm-validate-$src_hash
if [ ! -x "$VALIDATE_DIR/olm-validate" ]; then
  say "building hack/olm-validate (operator-framework/api validators; about 1 min cold)"
  start=$(date +%s)
  mkdir -p "$VALIDATE_DIR"
  (cd hack/olm-validate && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$VALIDATE_DIR/olm-validate" .)
  say "built olm-validate in $(($(date +%s) - start)) s"
fi

# OLM's CRDs, from the operator-framework/api version this OLM release requires.
api_dir=$(cd "$CACHE/build/olm-$OLM_VERSION" && go list -m -f '{{.Dir}}' github.com/operator-framework/api)

say "ready: olm $OLM_VERSION, opm $OPM_VERSION, olm-validate $src_hash, CRDs from $api_dir"
echo "$OLM_DIR"
echo "$OPM_DIR"
echo "$VALIDATE_DIR"
echo "$api_dir/crds"
