#!/usr/bin/env bash
# Debian packages the tests and the local cluster use, installed only when missing.
# Each entry is command:package.
set -euo pipefail
needed=(openssl:openssl git:git setpriv:util-linux prometheus:prometheus redis-server:redis-server
  containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins podman:podman
  ip:iproute2 iptables:iptables setcap:libcap2-bin)
missing=()
for entry in "${needed[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
