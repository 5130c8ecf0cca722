#!/usr/bin/env bash
# Builds the binaries of the local Kubernetes control plane from Go modules, through the Go
# module proxy, into a cache outside the repository. Nothing is downloaded but Go modules.
# Each binary is rebuilt only when missing. Prints the cache folders on its last two lines.
#
#   TRELLIS_CACHE        cache root (default ~/.cache/trellis)
#   K8S_VERSION          Kubernetes release, e.g. v1.36.3 (staging modules use v0.<minor>.<patch>)
#   KWOK_VERSION         KWOK release
#   TRELLIS_K8S_EXTRA    extra k8s.io/kubernetes commands to build, e.g. "kubelet"
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.36.3}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${TRELLIS_CACHE:-$HOME/.cache/trellis}
K8S_DIR=$CACHE/k8s-$K8S_VERSION
KWOK_DIR=$CACHE/kwok-$KWOK_VERSION
MOD_DIR=$CACHE/build/k8s-$K8S_VERSION

say() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "go is required (Go 1.26+)" >&2; exit 1; }

staging_modules="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider
cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api cri-client
cri-streaming csi-translation-lib dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator
kube-controller-manager kube-proxy kube-scheduler kubectl kubelet metrics mount-utils
pod-security-admission sample-apiserver streaming"

commands="kube-apiserver kube-controller-manager kube-scheduler kubectl ${TRELLIS_K8S_EXTRA:-}"

missing=""
for c in $commands etcd; do [ -x "$K8S_DIR/$c" ] || missing="$missing $c"; done

if [ -n "$missing" ]; then
  mkdir -p "$MOD_DIR" "$K8S_DIR"
  staging_version="v0.${K8S_VERSION#v1.}"
  # The module (go.mod + tools.go) is a pure function of the version and the command list;
  # it is re-tidied only when that changes.
  tmp=$(mktemp -d)
  {
    echo "module trellis.dev/hack/k8sbuild"
    echo
    echo "go 1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $staging_modules; do echo "	k8s.io/$m => k8s.io/$m $staging_version"; done
    echo ")"
  } >"$tmp/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for c in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do echo "	_ \"k8s.io/kubernetes/cmd/$c\""; done
    echo "	_ \"go.etcd.io/etcd/server/v3\""
    echo ")"
  } >"$tmp/tools.go"
  if [ ! -f "$MOD_DIR/go.sum" ] || ! cmp -s "$tmp/tools.go" "$MOD_DIR/tools.go"; then
    say "writing build module for k8s.io/kubernetes $K8S_VERSION (staging $staging_version)"
    cp "$tmp/go.mod" "$tmp/tools.go" "$MOD_DIR/"
    say "go mod tidy (downloads modules through the Go module proxy; about a minute cold)"
    (cd "$MOD_DIR" && go mod tidy)
  fi
  rm -rf "$tmp"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags="$ldflags -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ldflags="$ldflags -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  k8s_missing=""
  for c in $missing; do [ "$c" = etcd ] || k8s_missing="$k8s_missing k8s.io/kubernetes/cmd/$c"; done
  if [ -n "$k8s_missing" ]; then
    say "building$k8s_missing (about 11 min cold on 2 cores, under 30 s with a warm Go build cache)"
    start=$(date +%s)
    (cd "$MOD_DIR" && CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$K8S_DIR/" $k8s_missing)
    say "built in $(( $(date +%s) - start )) s"
  fi
  if [ ! -x "$K8S_DIR/etcd" ]; then
    say "building etcd (the version k8s.io/kubernetes $K8S_VERSION pins)"
    (cd "$MOD_DIR" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$K8S_DIR/etcd" go.etcd.io/etcd/server/v3)
  fi
fi

if [ ! -x "$KWOK_DIR/kwok" ]; then
  mkdir -p "$KWOK_DIR"
  say "building kwok $KWOK_VERSION (about 2 min cold)"
  GOBIN="$KWOK_DIR" CGO_ENABLED=0 go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi

say "ready: $("$K8S_DIR/kube-apiserver" --version), etcd $("$K8S_DIR/etcd" --version | head -1 | awk '{print $3}'), kwok $KWOK_VERSION"
echo "$K8S_DIR"
echo "$KWOK_DIR"
