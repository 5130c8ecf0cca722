#!/usr/bin/env bash
# Builds CoreDNS, the DNS server of a real Kubernetes cluster, from Go modules through the Go
# module proxy, into a cache outside the repository, for the local cluster's real node
# (test/cluster/cluster-dns.ts). Rebuilt only when missing. Prints the binary's path on its last
# line.
#
# Not CoreDNS's own main: a small module of ours that runs coremain with only the plugins the
# harness uses, in CoreDNS's order — bind, ready, errors, kubernetes (Service names → ClusterIPs,
# headless Services → pod IPs, from an informer on the API server) and template (NXDOMAIN for
# every other name: nothing is ever forwarded off the machine). Same code, far fewer modules
# than the full plugin set (cloud DNS providers, tracing, ...).
#
#   TRELLIS_CACHE        cache root (default ~/.cache/trellis)
#   COREDNS_VERSION      CoreDNS release, e.g. v1.15.0
set -euo pipefail

COREDNS_VERSION=${COREDNS_VERSION:-v1.15.0}
CACHE=${TRELLIS_CACHE:-$HOME/.cache/trellis}
OUT_DIR=$CACHE/coredns-$COREDNS_VERSION
MOD_DIR=$CACHE/build/coredns-$COREDNS_VERSION

say() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v go >/dev/null || { echo "go is required (Go 1.26+)" >&2; exit 1; }

if [ ! -x "$OUT_DIR/coredns" ]; then
  mkdir -p "$MOD_DIR" "$OUT_DIR"
  cat >"$MOD_DIR/main.go" <<'EOF'
// CoreDNS with the plugins the local cluster's DNS uses (hack/build-coredns.sh).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

// The order CoreDNS's own directives list gives these plugins.
func init() {
	dnsserver.Directives = []string{"bind", "ready", "errors", "template", "kubernetes"}
}

func main() {
	coremain.Run()
}
EOF
  if [ ! -f "$MOD_DIR/go.sum" ] || ! grep -q "coredns/coredns $COREDNS_VERSION" "$MOD_DIR/go.mod" 2>/dev/null; then
    {
      echo "module trellis.dev/hack/corednsbuild"
      echo
      echo "go 1.26"
      echo
      echo "require github.com/coredns/coredns $COREDNS_VERSION"
    } >"$MOD_DIR/go.mod"
    say "go mod tidy for CoreDNS $COREDNS_VERSION (downloads modules through the Go module proxy)"
    (cd "$MOD_DIR" && go mod tidy)
  fi
  say "building CoreDNS $COREDNS_VERSION (kubernetes, template, bind, ready, errors plugins; a few minutes cold)"
  start=$(date +%s)
  (cd "$MOD_DIR" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$OUT_DIR/coredns.tmp" .)
  mv "$OUT_DIR/coredns.tmp" "$OUT_DIR/coredns"
  say "built in $(( $(date +%s) - start )) s"
fi

say "ready: $("$OUT_DIR/coredns" -version | head -1)"
echo "$OUT_DIR/coredns"
