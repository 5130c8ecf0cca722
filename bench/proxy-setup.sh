#!/usr/bin/env bash
# Installs the peers and load generators bench/proxy-hop.bench.ts measures against:
# HAProxy (the peer proxy), wrk (closed-loop throughput) and nghttp2-client (h2load).
set -euo pipefail
missing=()
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
haproxy -v | head -1
