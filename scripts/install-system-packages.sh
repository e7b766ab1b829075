#!/usr/bin/env bash
# Installs the Debian packages Distri builds against (OpenSSL, libpng and libjpeg-turbo headers), the tools the
# namespaced test hosts use (nftables, iproute2: scripts/testnet.sh), if missing, and any packages named
# as arguments (what a script needs besides, e.g. gnuplot-nox or etcd-server).
set -euo pipefail
packages=(libssl-dev libpng-dev libturbojpeg0-dev zlib1g-dev pkg-config nftables iproute2 "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
