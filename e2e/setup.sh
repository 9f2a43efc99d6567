#!/usr/bin/env bash
# Installs what the test stack needs on Debian, if it is missing, and
# builds the cached Asterisk root file system. Safe to run again.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "$(id -u)" = 0 ] || { echo "setup: run as root (apt-get, unshare, chroot)" >&2; exit 1; }
need=()
for pair in debootstrap:debootstrap redis-server:redis-server redis-cli:redis-tools curl:curl ss:iproute2 \
	unshare:util-linux nsenter:util-linux docker-compose:docker-compose espeak-ng:espeak-ng promtool:prometheus; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "setup: installing ${need[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends ca-certificates "${need[@]}" >/dev/null
fi
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "setup: Go 1.26 or newer is required (https://go.dev/dl/)" >&2; exit 1; }
bash "$here/stack.sh" root
