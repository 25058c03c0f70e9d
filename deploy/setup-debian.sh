#!/usr/bin/env bash
# Installs what building raftmq needs on Debian when it is missing: a C
# compiler for cgo, pkg-config and libzmq's headers. Uses sudo unless root.
set -euo pipefail

need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
pkg-config --exists libzmq 2>/dev/null || need+=(libzmq3-dev)

if ((${#need[@]} == 0)); then
	echo "setup-debian: gcc, pkg-config and libzmq3-dev are present"
	exit 0
fi
sudo=""
if [[ $(id -u) != 0 ]]; then
	command -v sudo >/dev/null || { echo "setup-debian: need root or sudo to install: ${need[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "setup-debian: installing ${need[*]}"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup-debian: done (libzmq $(pkg-config --modversion libzmq))"
